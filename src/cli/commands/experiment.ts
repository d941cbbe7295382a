/**
 * `nmlab experiment list|status|compare|resume|retry|cancel`: what the Experiment, Queue and
 * Compare views show, as text, JSON or CSV, and the queue actions for scripts.
 */
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type CliIO, type Command } from '../command';
import { createLabBackend } from '../../core/backend';
import { compareToCsv, type CompareResult, type ExperimentDetail } from '../../shared/contract/experiments';
import { formatEstimate } from '../../shared/contract/compare';
import { cancelOnCtrlC, printFinalReport, progressPrinter, queueSnapshots } from './run';
import { adoptSlurm, readSlurmState } from '../../core/executors/slurm';
import type { SlurmStudyState } from '../../shared/contract/executors';

const USAGE = `Usage:
  nmlab experiment list --project DIR [--json]
  nmlab experiment status ID --project DIR [--json]           every job: state, attempts, run
  nmlab experiment compare ID --project DIR [--json|--csv]    mean ± 95 % CI per cell (Table 4 layout), claims
  nmlab experiment resume ID --project DIR [--concurrency N] [--json]
                                                              re-queue interrupted and cancelled jobs and run them here
  nmlab experiment retry ID --project DIR [--job KEY] [--json]
                                                              re-run failed/cancelled/interrupted jobs (or one)
  nmlab experiment cancel ID --project DIR                    cancel a study on Slurm (scancel), from any shell

A study started with --executor slurm resumes on Slurm: resume re-attaches to its jobs still
queued or running there and resubmits only what was lost (--profile NAME: with this profile).
Ctrl-C during resume or retry (local queue) cancels the study's running and pending jobs and
exits 130; resume runs them again.
`;

const SUBS = ['list', 'status', 'compare', 'resume', 'retry', 'cancel'] as const;

function printCompare(io: CliIO, c: CompareResult): void {
  io.out(`${c.name} (${c.experimentId}): ${c.finished} of ${c.total} fits finished; mean ± half-width of the 95 % CI (Student t; n = replicates, or tuning seeds for one replicate); * = best, its interval above the others'\n`);
  const header = ['backbone', 'γ', 'task', 'method', 'frac', 'n', 'acc %', 'OOD acc %', 'Δ vs γ=0', 'SVE', 'LSVR'];
  const rows = c.rows.map((r) => {
    const e = r.taskType === 'ood' ? r.oodAccuracy : r.accuracy;
    return [
      r.backbone,
      r.gamma === null ? '—' : `${Math.round(r.gamma * 1000) / 10} %`,
      r.task,
      `${r.method}${r.best ? ' *' : ''}`,
      String(r.fraction),
      e ? `${e.n} ${e.over === 'replicates' ? 'rep' : 'seed'}` : '—',
      formatEstimate(r.accuracy),
      formatEstimate(r.oodAccuracy),
      formatEstimate(r.deltaVsClean, 100, 2, true),
      formatEstimate(r.sve, 1, 3),
      formatEstimate(r.lsvr, 1, 3),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const line of [header, ...rows]) io.out(line.map((x, i) => x.padEnd(widths[i])).join('  ') + '\n');
  for (const k of c.claims) {
    const f = (v: number) => (k.kind === 'difference' ? `${(100 * v).toFixed(2)} pts` : `r ${v.toFixed(3)}`);
    io.out(`claim: ${k.statement}: ${k.verdict} (${f(k.value)}${k.lo !== null && k.hi !== null ? `, 95 % CI [${f(k.lo)}, ${f(k.hi)}]` : ''}; ${k.basis})\n`);
  }
}

function printStatus(io: CliIO, d: ExperimentDetail, slurm: SlurmStudyState | null): void {
  const c = d.summary.counts;
  io.out(`${d.summary.name} (${d.summary.id}): ${c.succeeded}/${d.summary.total} succeeded, ${c.running} running, ${c.pending} pending, ${c.failed} failed, ${c.cancelled} cancelled, ${c.interrupted} interrupted\n`);
  if (slurm) io.out(`on Slurm (profile ${slurm.profileName ?? 'built-in'}; ${slurm.submissions.length} sbatch submissions, scripts in experiments/${d.summary.id}/slurm/)\n`);
  const w = Math.max(...d.jobs.map((j) => j.key.length));
  for (const j of d.jobs) {
    const s = slurm?.jobs[j.key];
    const where = s ? `  slurm ${s.slurmId} ${s.state}${s.reason ? ` (${s.reason})` : ''}` : '';
    io.out(`${j.key.padEnd(w)}  ${j.state.padEnd(11)}  attempts ${j.attempts}  ${j.runId ?? ''}${where}${j.error ? `  (${j.error})` : ''}\n`);
  }
}

export const experimentCommand: Command = {
  name: 'experiment',
  summary: 'status, comparison (JSON/CSV), resume and retry of experiments',
  usage: USAGE,
  options: { project: { type: 'string' }, json: { type: 'boolean' }, csv: { type: 'boolean' }, job: { type: 'string' }, concurrency: { type: 'string' }, profile: { type: 'string' } },
  allowPositionals: true,
  async run(args, io) {
    const [sub, id, ...extra] = args.positionals;
    if (!sub || !(SUBS as readonly string[]).includes(sub)) throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is required');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (sub !== 'list' && !id) throw new UsageError(`experiment ${sub} needs an experiment id`);
    const projectDir = requireOpt(args, 'project');
    const json = args.values.json === true;
    const concurrency = numberOpt(args, 'concurrency');
    const backend = createLabBackend({ experimentConcurrency: concurrency });
    try {
      const ex = backend.experiments;
      switch (sub as (typeof SUBS)[number]) {
        case 'list': {
          const list = await ex.list(projectDir);
          if (json) printJson(io, list);
          else if (!list.length) io.out('no experiments in this project; start one with `nmlab run SPEC.yaml --project DIR`\n');
          else for (const s of list) io.out(`${s.id}  ${s.name}  ${s.counts.succeeded}/${s.total} succeeded  ${s.createdAt}\n`);
          return 0;
        }
        case 'status': {
          const d = await ex.get(projectDir, id);
          const slurm = await readSlurmState(projectDir, id);
          if (json) printJson(io, slurm ? { ...d, slurm } : d);
          else printStatus(io, d, slurm);
          return 0;
        }
        case 'compare': {
          const c = await ex.compare(projectDir, id);
          if (args.values.csv === true) io.out(compareToCsv(c));
          else if (json) printJson(io, c);
          else printCompare(io, c);
          return 0;
        }
        case 'cancel': {
          await ex.cancel(projectDir, id);
          io.out(`${id}: cancelled\n`);
          return 0;
        }
        case 'resume':
        case 'retry': {
          const print = progressPrinter(io.err);
          const stop = backend.onEvent('experiment', print);
          const profile = stringOpt(args, 'profile');
          // Ctrl-C on the local queue cancels, as in `nmlab run` (the forked workers ignore the
          // terminal's SIGINT; the queue stops them after their step). Slurm's jobs run on.
          const onSlurm = profile !== undefined || (await readSlurmState(projectDir, id)) !== null;
          let cancelled = false;
          const offSigint = onSlurm
            ? () => undefined
            : cancelOnCtrlC(
                io,
                () => id,
                () => {
                  cancelled = true;
                  void ex.cancel(projectDir, id).catch(() => undefined);
                },
              );
          let stopSnapshots: () => void = () => undefined;
          try {
            const job = stringOpt(args, 'job');
            if (profile !== undefined) await adoptSlurm(projectDir, id, profile);
            if (sub === 'resume') await ex.resume(projectDir, id);
            else await ex.retry(projectDir, id, job ? [job] : undefined);
            if (cancelled) await ex.cancel(projectDir, id);
            // A fresh ETA every ETA_REFRESH_MS while the jobs run.
            stopSnapshots = queueSnapshots(ex, projectDir, id, print);
            await ex.waitIdle(projectDir, id);
          } finally {
            stopSnapshots();
            stop();
            offSigint();
          }
          const code = printFinalReport(io, await ex.get(projectDir, id), projectDir, json);
          return cancelled ? 130 : code;
        }
      }
    } finally {
      await backend.dispose();
    }
  },
};
