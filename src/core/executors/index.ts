/** The executors a study runs on; see ./types.ts. */
import type { ExperimentService } from '../experiments/service';
import type { ExecutorName, SlurmStudyState } from '../../shared/contract/executors';
import type { QueueEntry } from '../../shared/contract/experiments';
import { localExecutor } from './local';
import { cancelSlurmStudy, runOnSlurm } from './slurm';
import type { StudyExecutor } from './types';

export type SlurmChangeListener = (entries: QueueEntry[], state: SlurmStudyState) => void;

export interface SlurmExecutorOptions {
  /** A profile of the project (slurm/profiles/NAME.yaml). */
  profileName?: string;
  onChange?: SlurmChangeListener;
}

/** A listener that prints a progress line (to stderr) whenever it changes. */
export function slurmProgressPrinter(id: string, err: (t: string) => void): SlurmChangeListener {
  let last = '';
  return (entries, state) => {
    const line = slurmProgressLine(id, entries, state);
    if (line !== last) err(line + '\n');
    last = line;
  };
}

export function slurmExecutor(o: SlurmExecutorOptions = {}): StudyExecutor {
  return {
    name: 'slurm',
    async run(projectDir, id, opts) {
      await runOnSlurm(projectDir, id, { profileName: o.profileName, onChange: o.onChange, resume: opts.resume, signal: opts.signal });
    },
    async cancel(projectDir, id) {
      await cancelSlurmStudy(projectDir, id);
    },
  };
}

/** The executor by name; `queue` runs local jobs. */
export function executorFor(name: ExecutorName, queue: ExperimentService, slurm: SlurmExecutorOptions = {}): StudyExecutor {
  return name === 'slurm' ? slurmExecutor(slurm) : localExecutor(queue);
}

/** A one-line progress text of a Slurm study: counts, and how many tasks Slurm runs or holds. */
export function slurmProgressLine(id: string, entries: QueueEntry[], state: SlurmStudyState): string {
  const n = (s: QueueEntry['state']) => entries.filter((e) => e.state === s).length;
  const inSlurm = entries.filter((e) => e.state === 'running').map((e) => state.jobs[e.key]?.state ?? '?');
  const running = inSlurm.filter((s) => s === 'RUNNING' || s === 'COMPLETING').length;
  const extra = [n('failed') && `${n('failed')} failed`, n('interrupted') && `${n('interrupted')} interrupted`, n('cancelled') && `${n('cancelled')} cancelled`].filter(Boolean);
  return `${id}: ${n('succeeded')}/${entries.length} done, ${running} running and ${inSlurm.length - running} waiting in Slurm${extra.length ? `, ${extra.join(', ')}` : ''}`;
}

export type { GraphJob, StudyExecutor, ExecutorRunOptions } from './types';
