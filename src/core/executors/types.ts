/**
 * Executors: where a study's queue runs its jobs (issue 13). `local` runs them in worker
 * processes of this NMLab, as many at once as the queue's concurrency (./local.ts); `slurm`
 * hands the whole graph to a Slurm cluster, one job array per stage with afterok
 * dependencies, and follows it from the run files (./slurm.ts). Both write the same run
 * folders and queue, so compare, reports and the UI read a study the same way.
 */
import type { ExecutorName } from '../../shared/contract/executors';

/** A job of a study's graph as an executor schedules it. */
export interface GraphJob {
  key: string;
  /** Position in the study's job list (part of its run ids). */
  index: number;
  /** Jobs of one stage are submitted together (one Slurm array). */
  stage: string;
  /** Keys of the jobs that must succeed first. */
  deps: string[];
}

export interface ExecutorRunOptions {
  /** Re-queue interrupted and cancelled jobs (and, on Slurm, re-attach to those still there). */
  resume: boolean;
  /** Stop waiting; on Slurm the jobs go on and a later resume re-attaches. */
  signal?: AbortSignal;
}

export interface StudyExecutor {
  readonly name: ExecutorName;
  /** Run the study's pending jobs until none is pending or running. */
  run(projectDir: string, id: string, opts: ExecutorRunOptions): Promise<void>;
  /** Cancel every pending and running job of the study. */
  cancel(projectDir: string, id: string): Promise<void>;
}
