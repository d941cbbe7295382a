/**
 * `nmlab run SPEC.yaml|SPEC.json --project DIR`: create an experiment from a spec and run its
 * queue in this process until every job has ended, printing progress to stderr. Killing this
 * process at any moment leaves the project readable; `nmlab experiment resume ID` carries on.
 */
import { readFile } from 'node:fs/promises';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type CliIO, type Command } from '../command';
import { createLabBackend } from '../../core/backend';
import { NmlabError } from '../../shared/errors';
import { parseStudyText } from '../../core/experiments/spec';
import type { ExperimentDetail, ExperimentEvent, ExperimentSummary } from '../../shared/contract/experiments';
import type { StudyPlan, StudySpec } from '../../shared/contract/study';
import { ExecutorName } from '../../shared/contract/executors';
import { adoptSlurm } from '../../core/executors/slurm';
import { loadProfile } from '../../core/executors/profile';

const USAGE = `Usage:
  nmlab run SPEC.yaml --project DIR [--id ID] [--concurrency N] [--executor local|slurm] [--profile NAME] [--plan] [--json]

Creates a study from SPEC (YAML or JSON) in the project and runs its job graph — noisy
labels, pre-training, corruption domains, features, spectra, tuning, comparison — in worker
processes, N at a time (default: cores − 1), each job once its dependencies are done.
Progress goes to stderr: a line when a job starts or ends, and the ETA refreshed at most every
30 s while jobs run. The final state (and, with --json, the whole study) goes to stdout; the
report ends with the next step (resume after Ctrl-C, retry when a job failed). Exit code 0
when every job succeeded, 1 otherwise (the failed jobs and why are printed).
--plan only checks the spec against the project and prints the jobs per stage.
Ctrl-C (local executor) cancels the study's running and pending jobs (each running one stops
after its current step, its run saved as cancelled) and exits 130; \`nmlab experiment resume ID
--project DIR\` runs them again, as it resumes an interrupted study; compare with
\`nmlab experiment compare ID --project DIR\`.
--executor slurm submits the jobs to Slurm instead (an sbatch array per stage; the project must
be on a filesystem the compute nodes share) with the project's profile NAME
(slurm/profiles/NAME.yaml); killing this process leaves them running there (docs/slurm.md).

A spec names the project's datasets and backbones by id (docs/study-spec.md, examples/):
  name: Noise study
  layout: noise-study                  # or method-comparison, custom (the compare view's layout)
  backbones: [{ id: resnet-tiny.fmnist }]            # imported; γ from metadata or { gamma: 0.1 }
  pretrain: { dataset: fmnist, gammas: [0, 0.1, 0.3], seeds: [0, 1, 2], recipe: { epochs: 6 } }
  tasks: [{ id: fm, dataset: fmnist, train: train, test: test }]
  ood: [{ id: fm-ood, source: fm, targets: [{ corruption: rotation, severity: 3 }, { dataset: other }] }]
  methods: [{ method: lp }, { method: mlp }, { method: nmtune, preset: paper, params: { lr: 0.001 } }]
  fractions: [1]
  seeds: [0, 1, 2]
  eta: [0, 0.2]                        # downstream label noise
  defaults: { epochs: 30 }             # overrides for every method
`;

/** Read and validate a spec file (YAML is a superset of JSON). */
export async function readSpecFile(file: string): Promise<StudySpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NmlabError('NOT_FOUND', `cannot read the spec ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseStudyText(text, file);
}

/** How often the progress line's ETA is refreshed while jobs run (the line is reprinted only when its text changed). */
export const ETA_REFRESH_MS = 30_000;

/**
 * A one-line-per-change progress printer for stderr: a line whose job counts changed prints at
 * once; one whose ETA alone changed at most every `everyMs` (so neither a terminal nor a log
 * file gets more than that); the same line never twice. `now` is the clock (tests inject one).
 */
export function progressPrinter(err: (t: string) => void, now: () => number = Date.now, everyMs = ETA_REFRESH_MS): (e: ExperimentEvent) => void {
  let last = '';
  let lastCounts = '';
  let lastAt = -Infinity;
  return (e) => {
    if (e.type !== 'queue') return;
    const c = e.summary.counts;
    const eta = e.summary.etaSeconds !== null ? `, ETA ${Math.round(e.summary.etaSeconds)} s` : '';
    const counts = `${e.experimentId}: ${c.succeeded}/${e.summary.total} done, ${c.running} running, ${c.pending} pending${c.failed ? `, ${c.failed} failed` : ''}${c.interrupted ? `, ${c.interrupted} interrupted` : ''}${c.cancelled ? `, ${c.cancelled} cancelled` : ''}`;
    const line = counts + eta;
    if (line === last || (counts === lastCounts && now() - lastAt < everyMs)) return;
    err(line + '\n');
    [last, lastCounts, lastAt] = [line, counts, now()];
  };
}

/**
 * Every `everyMs`, a queue event with the study as the queue sees it now (its ETA counts the
 * running jobs' progress) to `onEvent`, so that a progress line does not go stale during a long
 * job. Returns the stop function; nothing is sent once it has been called.
 */
export function queueSnapshots(
  ex: { get(projectDir: string, id: string): Promise<ExperimentDetail> },
  projectDir: string,
  id: string,
  onEvent: (e: ExperimentEvent) => void,
  everyMs = ETA_REFRESH_MS,
): () => void {
  let stopped = false;
  const timer = setInterval(() => {
    void ex.get(projectDir, id).then(
      (d) => stopped || onEvent({ type: 'queue', projectDir, experimentId: id, summary: d.summary, jobs: d.jobs }),
      () => undefined,
    );
  }, everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/**
 * What to run next, one line each, only what applies: with a failed job, `retry` (it re-runs the
 * failed jobs and the cancelled and interrupted ones, those blocked behind a failure included);
 * with none failed but jobs cancelled (Ctrl-C), interrupted or pending, `resume`. Nothing when
 * every job succeeded.
 */
export function nextSteps(summary: Pick<ExperimentSummary, 'id' | 'counts'>, projectDir: string): string {
  const c = summary.counts;
  const where = `${summary.id} --project ${projectDir}`;
  if (c.failed) return `Retry with \`nmlab experiment retry ${where}\` (the failed jobs and those not run); each run's log is in runs/<run>/log.txt.\n`;
  const unfinished = c.cancelled + c.interrupted + c.pending;
  if (unfinished) return `Resume with \`nmlab experiment resume ${where}\`: it runs the study's ${unfinished} unfinished job${unfinished > 1 ? 's' : ''}.\n`;
  return '';
}

/** The last line, every job that did not succeed with its reason (a blocked job names the one it waited for), and what to run next. */
export function finalReport(d: ExperimentDetail, projectDir: string): { code: number; text: string } {
  const c = d.summary.counts;
  const ok = c.succeeded === d.summary.total;
  let text = `${d.summary.id}: ${c.succeeded} of ${d.summary.total} jobs succeeded${ok ? '' : ` (${c.failed} failed, ${c.cancelled} cancelled, ${c.interrupted} interrupted, ${c.pending} pending)`}\n`;
  const bad = d.jobs.filter((j) => j.state === 'failed' || j.state === 'interrupted');
  const blocked = d.jobs.filter((j) => j.state === 'cancelled');
  for (const j of bad) text += `  ${j.state}: ${j.key}${j.runId ? ` (run ${j.runId})` : ''}\n    ${(j.error ?? 'no reason recorded').split('\n').join('\n    ')}\n`;
  if (blocked.length) text += `  ${blocked.length} job${blocked.length > 1 ? 's' : ''} not run: ${(blocked[0].error ?? 'cancelled').replace(/^not run: /, '')}${blocked.length > 1 ? ' (and others)' : ''}\n`;
  text += nextSteps(d.summary, projectDir);
  return { code: ok ? 0 : 1, text };
}

/**
 * Print the study as it ended: the report on stdout, or with `json` the study on stdout and the
 * report on stderr unless every job succeeded. The report ends with what to run next (after
 * Ctrl-C: resume, which runs the cancelled jobs and those blocked behind them; retry only when a
 * job failed). Returns the exit code of {@link finalReport}.
 */
export function printFinalReport(io: CliIO, d: ExperimentDetail, projectDir: string, json: boolean): number {
  const { code, text } = finalReport(d, projectDir);
  if (json) {
    printJson(io, d);
    if (code !== 0) io.err(text);
  } else io.out(text);
  return code;
}

/**
 * Ctrl-C on the local queue: say on stderr that the study is being cancelled and call `cancel`.
 * Once only: a second Ctrl-C ends the process (Node's default). Returns the remover.
 */
export function cancelOnCtrlC(io: CliIO, studyId: () => string | null, cancel: () => void): () => void {
  const onSigint = (): void => {
    const id = studyId();
    io.err(`Ctrl-C: cancelling${id ? ` study ${id}` : ''}; the running jobs stop after their current step (Ctrl-C again to quit at once)\n`);
    cancel();
  };
  process.once('SIGINT', onSigint);
  return () => void process.off('SIGINT', onSigint);
}

/** How {@link runStudy} runs a study, and what it tells its caller on the way. */
export interface RunStudyOptions {
  /** The study's id (default: made from its name). */
  id?: string;
  /** Jobs at once (default: cores − 1). */
  concurrency?: number;
  executor?: ExecutorName;
  /** The project's Slurm profile (with the slurm executor). */
  profile?: string;
  /** Aborting cancels the study on its queue: running jobs stop after their current step, and resume carries on. */
  signal?: AbortSignal;
  /** Every queue and live event of the project's studies while it runs. */
  onEvent?: (e: ExperimentEvent) => void;
  /** Also a queue event of the study every this many ms while it runs (a fresh ETA; {@link queueSnapshots}). */
  snapshotMs?: number;
  /** The plan (checked against the project, nothing written yet); `false` stops there. */
  onPlan?: (plan: StudyPlan) => boolean | void;
  /** The study is written and about to start; `concurrency` jobs run at once. */
  onCreated?: (d: ExperimentDetail, plan: StudyPlan, concurrency: number) => void;
}

/**
 * Create a study from `spec` in the project and run its queue in this process until every job
 * has ended (`nmlab run`, and `nmlab tune --project` with its one-job study). Returns the study
 * as it ended, or null when `onPlan` stopped before anything was written.
 */
export async function runStudy(projectDir: string, spec: StudySpec, opts: RunStudyOptions = {}): Promise<ExperimentDetail | null> {
  const executor = opts.executor ?? 'local';
  const backend = createLabBackend({ experimentConcurrency: opts.concurrency });
  const stop = opts.onEvent ? backend.onEvent('experiment', opts.onEvent) : () => undefined;
  const ex = backend.experiments;
  try {
    const plan = await ex.plan(projectDir, spec);
    if (opts.onPlan?.(plan) === false) return null;
    // A profile that does not exist or does not validate is reported before anything is written.
    if (executor === 'slurm' && opts.profile !== undefined) await loadProfile(projectDir, opts.profile);
    const created = await ex.create(projectDir, spec, opts.id);
    const id = created.summary.id;
    if (executor === 'slurm') await adoptSlurm(projectDir, id, opts.profile);
    opts.onCreated?.(created, plan, ex.defaultConcurrency);
    const cancel = () => void ex.cancel(projectDir, id).catch(() => undefined);
    opts.signal?.addEventListener('abort', cancel, { once: true });
    const stopSnapshots = opts.onEvent && opts.snapshotMs ? queueSnapshots(ex, projectDir, id, opts.onEvent, opts.snapshotMs) : () => undefined;
    try {
      await ex.start(projectDir, id);
      if (opts.signal?.aborted) cancel();
      await ex.waitIdle(projectDir, id);
    } finally {
      stopSnapshots();
      opts.signal?.removeEventListener('abort', cancel);
    }
    return await ex.get(projectDir, id);
  } finally {
    stop();
    await backend.dispose();
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run an experiment spec (YAML/JSON) in a project',
  usage: USAGE,
  options: { project: { type: 'string' }, id: { type: 'string' }, concurrency: { type: 'string' }, plan: { type: 'boolean' }, json: { type: 'boolean' }, executor: { type: 'string' }, profile: { type: 'string' } },
  allowPositionals: true,
  async run(args, io) {
    const [specFile, ...extra] = args.positionals;
    if (!specFile) throw new UsageError('a spec file is required');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const projectDir = requireOpt(args, 'project');
    const concurrency = numberOpt(args, 'concurrency');
    if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) throw new UsageError('--concurrency must be a positive integer');
    const executor = ExecutorName.safeParse(stringOpt(args, 'executor') ?? 'local');
    if (!executor.success) throw new UsageError('--executor is local or slurm');
    const profile = stringOpt(args, 'profile');
    if (profile !== undefined && executor.data !== 'slurm') throw new UsageError('--profile names a Slurm profile; use it with --executor slurm');
    const spec = await readSpecFile(specFile);
    const stagesOf = (plan: StudyPlan) =>
      Object.entries(plan.stages)
        .filter(([, n]) => n > 0)
        .map(([stage, n]) => `${n} ${stage}`)
        .join(', ');
    // Ctrl-C (local queue): cancel the study's running and pending jobs, then say how to carry
    // on. The forked workers ignore the SIGINT the terminal sends them too (src/core/jobs/worker.ts);
    // a second Ctrl-C ends this process at once. On Slurm the jobs are not ours to stop: this
    // process just ends and they keep running there.
    const ctl = new AbortController();
    let studyId: string | null = null;
    const offSigint = executor.data === 'local' ? cancelOnCtrlC(io, () => studyId, () => ctl.abort()) : () => undefined;
    let d: Awaited<ReturnType<typeof runStudy>>;
    try {
      d = await runStudy(projectDir, spec, {
        signal: ctl.signal,
        id: stringOpt(args, 'id'),
        concurrency,
        executor: executor.data,
        profile,
        onEvent: progressPrinter(io.err),
        snapshotMs: ETA_REFRESH_MS,
        onPlan: (plan) => {
          for (const note of plan.notes) io.err(`note: ${note}\n`);
          if (args.values.plan !== true) return true;
          if (args.values.json === true) printJson(io, plan);
          else io.out(`${plan.jobs.length} jobs: ${stagesOf(plan)}\n${plan.jobs.map((j) => `  ${j.key}${j.deps.length ? `  ← ${j.deps.length} dep${j.deps.length > 1 ? 's' : ''}` : ''}`).join('\n')}\n`);
          return false;
        },
        onCreated: (created, plan, n) => {
          studyId = created.summary.id;
          io.err(`study ${created.summary.id}: ${created.jobs.length} jobs (${stagesOf(plan)}), ${executor.data === 'slurm' ? 'on Slurm' : `${n} at a time`}\n`);
        },
      });
    } finally {
      offSigint();
    }
    if (!d) return 0;
    const code = printFinalReport(io, d, projectDir, args.values.json === true);
    return ctl.signal.aborted ? 130 : code;
  },
};
