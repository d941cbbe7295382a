/**
 * One study job on a compute node: what `nmlab worker --project DIR --study ID --job KEY
 * --attempt N` runs inside a Slurm task. It runs the job in this process through runStudyJob
 * (no worker fork: the node's allocation is the job's), makes the run folder of a requeued
 * attempt, and turns Slurm's SIGTERM (time limit near, preemption, scancel) into an
 * interrupted run — requeued when Slurm still runs the task, left alone when the study was
 * cancelled.
 */
import { hostname } from 'node:os';
import type { ExperimentFile } from '../../shared/contract/experiments';
import type { JobSpecInput } from '../../shared/contract/jobs';
import { NmlabError } from '../../shared/errors';
import { runStudyJob } from '../jobs/kinds/study';
import { createRun, readRunConfig, type RunConfig } from '../runs/store';
import { appendRunLog, readRunStatus, setRunStatus } from '../runs/files';
import { readExperiment, studyRunId } from '../experiments/store';
import type { SlurmControl } from './slurmctl';

/** What a worker runs for job `index` of a study, and the config of its run folder. */
export function studyJobRun(projectDir: string, exp: ExperimentFile, index: number, attempt: number, createdAt: string): { spec: JobSpecInput; config: RunConfig } {
  const job = exp.jobs[index];
  const runId = studyRunId(exp.id, index, attempt);
  return {
    spec: { kind: 'study', projectDir, experimentId: exp.id, jobKey: job.key, runId, attempt },
    config: { id: runId, kind: `study.${job.stage}`, experimentId: exp.id, jobKey: job.key, attempt, createdAt, job },
  };
}

export interface TaskOptions {
  projectDir: string;
  studyId: string;
  key: string;
  attempt: number;
  /** Where progress and log lines go (the Slurm task's output file). */
  out: (line: string) => void;
  slurm: SlurmControl;
  /** Aborted on SIGTERM. */
  signal: AbortSignal;
  /** `<array>_<task>` of this task, from SLURM_ARRAY_JOB_ID/SLURM_ARRAY_TASK_ID; null outside Slurm. */
  slurmId: string | null;
}

/** Progress lines at most this often (a Slurm output file is read by people, not a UI). */
const PROGRESS_EVERY_MS = 10_000;

/** Run the task; the process exit code (0 only when the run succeeded). */
export async function runStudyTask(o: TaskOptions): Promise<number> {
  const exp = await readExperiment(o.projectDir, o.studyId);
  const index = exp.jobs.findIndex((j) => j.key === o.key);
  if (index < 0) throw new NmlabError('NOT_FOUND', `study "${o.studyId}" in ${o.projectDir} has no job "${o.key}"; see \`nmlab experiment status ${o.studyId}\``);
  const { config } = studyJobRun(o.projectDir, exp, index, o.attempt, new Date().toISOString());
  const runId = config.id;
  // The submitting NMLab made the first attempt's folder; a requeued task makes its own.
  if (!(await readRunConfig(o.projectDir, runId))) await createRun(o.projectDir, config);
  const before = await readRunStatus(o.projectDir, runId);
  if (before?.status === 'cancelled' || before?.status === 'succeeded') {
    o.out(`run ${runId} is already ${before.status}; nothing to do`);
    return before.status === 'succeeded' ? 0 : 1;
  }
  await appendRunLog(o.projectDir, runId, `slurm task ${o.slurmId ?? '(none)'} on ${hostname()}, attempt ${o.attempt}`);
  // Who sent SIGTERM is read the moment it comes: a study cancel marks the run cancelled
  // before it calls scancel (the job itself may write 'cancelled' once it has stopped).
  let cancelledByStudy: Promise<boolean> = Promise.resolve(false);
  o.signal.addEventListener('abort', () => {
    cancelledByStudy = readRunStatus(o.projectDir, runId)
      .then((st) => st?.status === 'cancelled')
      .catch(() => false);
  });
  try {
    // The one way a study job runs in this process, as this task's attempt (the queue's file
    // does not know a requeued attempt yet). The output file is read by people: progress every 10 s.
    await runStudyJob(o.projectDir, o.studyId, o.key, { attempt: o.attempt, signal: o.signal, out: o.out, progressEveryMs: PROGRESS_EVERY_MS, jobId: o.slurmId ?? runId });
    const st = await readRunStatus(o.projectDir, runId);
    if (st?.status === 'succeeded' || !o.signal.aborted) {
      if (st?.status !== 'succeeded') await setRunStatus(o.projectDir, runId, 'succeeded');
      o.out(`run ${runId} succeeded`);
      return 0;
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (!o.signal.aborted) {
      await setRunStatus(o.projectDir, runId, 'failed', { error: message });
      await appendRunLog(o.projectDir, runId, `failed: ${message}`);
      o.out(`run ${runId} failed: ${message}`);
      return 1;
    }
  }
  // Stopped by SIGTERM.
  if (await cancelledByStudy) {
    o.out(`run ${runId} cancelled`);
    return 1;
  }
  const why = 'Slurm sent SIGTERM (time limit near, preemption or scancel)';
  await setRunStatus(o.projectDir, runId, 'interrupted', { error: why });
  await appendRunLog(o.projectDir, runId, `interrupted: ${why}`);
  if (o.slurmId) {
    try {
      await o.slurm.requeue(o.slurmId);
      o.out(`run ${runId} interrupted by SIGTERM; task ${o.slurmId} requeued (next attempt ${o.attempt + 1})`);
    } catch (e) {
      // Cancelled (or otherwise ended) in Slurm: nothing to requeue; a resume resubmits it.
      o.out(`run ${runId} interrupted by SIGTERM; not requeued: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return 143;
}
