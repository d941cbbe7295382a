/**
 * `nmlab run SPEC.yaml|SPEC.json --project DIR`: create an experiment from a spec and run its
 * queue in this process until every job has ended, printing progress to stderr. Killing this
 * process at any moment leaves the project readable; `nmlab experiment resume ID` carries on.
 */
import { readFile } from 'node:fs/promises';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type Command } from '../command';
import { createLabBackend } from '../../core/backend';
import { NmlabError } from '../../shared/errors';
import { parseStudyText } from '../../core/experiments/spec';
import type { ExperimentDetail, ExperimentEvent } from '../../shared/contract/experiments';
import type { StudySpec } from '../../shared/contract/study';
import { ExecutorName } from '../../shared/contract/executors';
import { adoptSlurm } from '../../core/executors/slurm';
import { loadProfile } from '../../core/executors/profile';

const USAGE = `Usage:
  nmlab run SPEC.yaml --project DIR [--id ID] [--concurrency N] [--executor local|slurm] [--profile NAME] [--plan] [--json]

Creates a study from SPEC (YAML or JSON) in the project and runs its job graph — noisy
labels, pre-training, corruption domains, features, spectra, tuning, comparison — in worker
processes, N at a time (default: cores − 1), each job once its dependencies are done.
Progress goes to stderr; the final state (and, with --json, the whole study) to stdout. Exit
code 0 when every job succeeded, 1 otherwise (the failed jobs and why are printed).
--plan only checks the spec against the project and prints the jobs per stage.
Resume an interrupted study with \`nmlab experiment resume ID --project DIR\`; compare with
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

/** A one-line-per-change progress printer for stderr. */
export function progressPrinter(err: (t: string) => void): (e: ExperimentEvent) => void {
  let last = '';
  return (e) => {
    if (e.type !== 'queue') return;
    const c = e.summary.counts;
    const eta = e.summary.etaSeconds !== null ? `, ETA ${Math.round(e.summary.etaSeconds)} s` : '';
    const line = `${e.experimentId}: ${c.succeeded}/${e.summary.total} done, ${c.running} running, ${c.pending} pending${c.failed ? `, ${c.failed} failed` : ''}${c.interrupted ? `, ${c.interrupted} interrupted` : ''}${c.cancelled ? `, ${c.cancelled} cancelled` : ''}${eta}`;
    if (line !== last) err(line + '\n');
    last = line;
  };
}

/** The last line, and every job that did not succeed with its reason (a blocked job names the one it waited for). */
export function finalReport(d: ExperimentDetail): { code: number; text: string } {
  const c = d.summary.counts;
  const ok = c.succeeded === d.summary.total;
  let text = `${d.summary.id}: ${c.succeeded} of ${d.summary.total} jobs succeeded${ok ? '' : ` (${c.failed} failed, ${c.cancelled} cancelled, ${c.interrupted} interrupted, ${c.pending} pending)`}\n`;
  const bad = d.jobs.filter((j) => j.state === 'failed' || j.state === 'interrupted');
  const blocked = d.jobs.filter((j) => j.state === 'cancelled');
  for (const j of bad) text += `  ${j.state}: ${j.key}${j.runId ? ` (run ${j.runId})` : ''}\n    ${(j.error ?? 'no reason recorded').split('\n').join('\n    ')}\n`;
  if (blocked.length) text += `  ${blocked.length} job${blocked.length > 1 ? 's' : ''} not run: ${(blocked[0].error ?? 'cancelled').replace(/^not run: /, '')}${blocked.length > 1 ? ' (and others)' : ''}\n`;
  if (!ok) text += `Retry with \`nmlab experiment retry ${d.summary.id} --project DIR\`; each run's log is in runs/<run>/log.txt.\n`;
  return { code: ok ? 0 : 1, text };
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
    const backend = createLabBackend({ experimentConcurrency: concurrency });
    const stop = backend.onEvent('experiment', progressPrinter(io.err));
    try {
      const plan = await backend.experiments.plan(projectDir, spec);
      const stages = Object.entries(plan.stages)
        .filter(([, n]) => n > 0)
        .map(([stage, n]) => `${n} ${stage}`)
        .join(', ');
      for (const note of plan.notes) io.err(`note: ${note}\n`);
      if (args.values.plan === true) {
        if (args.values.json === true) printJson(io, plan);
        else io.out(`${plan.jobs.length} jobs: ${stages}\n${plan.jobs.map((j) => `  ${j.key}${j.deps.length ? `  ← ${j.deps.length} dep${j.deps.length > 1 ? 's' : ''}` : ''}`).join('\n')}\n`);
        return 0;
      }
      // A profile that does not exist or does not validate is reported before anything is written.
      if (executor.data === 'slurm' && profile !== undefined) await loadProfile(projectDir, profile);
      const created = await backend.experiments.create(projectDir, spec, stringOpt(args, 'id'));
      const id = created.summary.id;
      if (executor.data === 'slurm') await adoptSlurm(projectDir, id, profile);
      io.err(`study ${id}: ${created.jobs.length} jobs (${stages}), ${executor.data === 'slurm' ? 'on Slurm' : `${backend.experiments.defaultConcurrency} at a time`}\n`);
      await backend.experiments.start(projectDir, id);
      await backend.experiments.waitIdle(projectDir, id);
      const d = await backend.experiments.get(projectDir, id);
      const { code, text } = finalReport(d);
      if (args.values.json === true) {
        printJson(io, d);
        if (code !== 0) io.err(text);
      } else io.out(text);
      return code;
    } finally {
      stop();
      await backend.dispose();
    }
  },
};
