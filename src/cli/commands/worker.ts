/**
 * `nmlab worker --project DIR --study ID --job KEY [--attempt N]`: run ONE job of a study in
 * this process and write its run folder. This is what a Slurm task runs on a compute node
 * (the batch scripts of src/core/executors/script.ts); people rarely call it by hand.
 * SIGTERM (time limit near, preemption, scancel) interrupts the run; see docs/slurm.md.
 */
import { UsageError, numberOpt, requireOpt, type Command } from '../command';
import { runStudyTask } from '../../core/executors/task';
import { slurmCli } from '../../core/executors/slurmctl';

const USAGE = `Usage:
  nmlab worker --project DIR --study ID --job KEY [--attempt N]

Runs job KEY of study ID in this process (the project folder must be reachable here) and
exits 0 when its run succeeded. Inside a Slurm task, SIGTERM marks the run interrupted and
requeues the task (the next attempt), unless the study was cancelled.
`;

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run one job of a study here (what a Slurm task runs on a node)',
  usage: USAGE,
  options: { project: { type: 'string' }, study: { type: 'string' }, job: { type: 'string' }, attempt: { type: 'string' } },
  async run(args, io) {
    const projectDir = requireOpt(args, 'project');
    const studyId = requireOpt(args, 'study');
    const key = requireOpt(args, 'job');
    const attempt = numberOpt(args, 'attempt') ?? 1;
    if (!Number.isInteger(attempt) || attempt < 1) throw new UsageError('--attempt must be a positive integer');
    const abort = new AbortController();
    const onTerm = () => abort.abort();
    process.on('SIGTERM', onTerm);
    const arrayJob = process.env.SLURM_ARRAY_JOB_ID;
    const task = process.env.SLURM_ARRAY_TASK_ID;
    try {
      return await runStudyTask({
        projectDir,
        studyId,
        key,
        attempt,
        out: (line) => io.out(`${new Date().toISOString()} ${line}\n`),
        slurm: slurmCli,
        signal: abort.signal,
        slurmId: arrayJob && task ? `${arrayJob}_${task}` : (process.env.SLURM_JOB_ID ?? null),
      });
    } finally {
      process.off('SIGTERM', onTerm);
    }
  },
};
