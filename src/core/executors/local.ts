/**
 * The `local` executor: the experiment queue's own worker processes (src/core/experiments),
 * as many at once as its concurrency, dependencies ordered by the queue.
 */
import type { ExperimentService } from '../experiments/service';
import type { ExecutorRunOptions, StudyExecutor } from './types';

export function localExecutor(queue: ExperimentService): StudyExecutor {
  return {
    name: 'local',
    async run(projectDir: string, id: string, opts: ExecutorRunOptions) {
      if (opts.resume) await queue.resume(projectDir, id);
      else await queue.start(projectDir, id);
      await queue.waitIdle(projectDir, id);
    },
    async cancel(projectDir: string, id: string) {
      await queue.cancel(projectDir, id);
    },
  };
}
