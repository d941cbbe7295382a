/**
 * Executors: where a study's jobs run (issue 13).
 *   - `local`: worker processes of this NMLab, started job by job by the study queue
 *     (src/core/experiments/service.ts) through its job runner (src/core/jobs), as many at once
 *     as its concurrency, each once its dependencies have succeeded.
 *   - `slurm`: the whole graph handed to a Slurm cluster, one job array per stage with afterok
 *     dependencies (./slurm.ts); the queue follows it through the `ExternalQueue` it is given
 *     (`slurmQueue`), from the run files.
 * Both write the same run folders and queue, so compare, reports and the UI read a study the
 * same way whichever ran it.
 */
export type { ExternalQueue } from '../experiments/service';

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
