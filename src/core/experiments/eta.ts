/**
 * The one estimate of how long a study (or the whole queue) still takes: the queue's own list
 * schedule, simulated. The queue (./service.ts `pump`) starts a job once every dependency has
 * succeeded and a slot is free, highest priority first, then the older study, then job order;
 * this replays that rule on estimated durations and returns when each job would end.
 *
 * Inputs: each job's state, dependencies and duration (its stage's cost: the mean measured
 * duration of finished jobs of that stage — this study's, else the project's — or a prior,
 * {@link stageCosts});
 * for a running job its own estimate of what is left (its progress rate) or else its stage's
 * cost less the time it has run; and the number of slots. A job that failed, was cancelled or
 * was interrupted never ends, so whatever depends on it (directly or not) cannot run and
 * counts for nothing. Used by the queue's progress (`nmlab run`, the queue view, the demo) and
 * by the builder's estimate before a study starts.
 */
import type { QueueJobState } from '../../shared/contract/experiments';
import type { StudyJob } from '../../shared/contract/study';

type Stage = StudyJob['stage'];

/** Prior cost of one job of each stage in seconds (one core, small data), until one is measured. */
export const PRIOR_SECONDS: Record<Stage, number> = { noise: 2, pretrain: 60, domains: 5, features: 10, spectrum: 3, tune: 8, aggregate: 2 };

/** One job as the schedule sees it. */
export interface EtaJob {
  /** Unique among the jobs given (prefix it with the study when several are scheduled together). */
  key: string;
  /** Its estimated duration in seconds (its stage's cost, {@link stageCosts}). */
  seconds: number;
  /** Keys of the jobs it waits for; a key not among the jobs counts as done. */
  deps: readonly string[];
  state: QueueJobState;
  /** The queue's priority, higher first. */
  priority: number;
  /** Tie-break after priority, lower first (the queue: older study, then job index). */
  order: number;
  /** Running: seconds since it started. */
  elapsedSeconds?: number;
  /** Running: its own estimate of the seconds left, when it has one. */
  remainingSeconds?: number | null;
}

export interface EtaOptions {
  /** Jobs at once (the queue's concurrency). */
  concurrency: number;
}

export interface EtaSchedule {
  /** Seconds from now until the last job that can run ends (0 when none is left). */
  makespan: number;
  /** Seconds from now until each job that can still run ends (running and pending jobs only). */
  finish: Map<string, number>;
  /** Pending jobs that can never run: a dependency failed, was cancelled or interrupted. */
  blocked: Set<string>;
}

const NEVER_ENDS: ReadonlySet<QueueJobState> = new Set<QueueJobState>(['failed', 'cancelled', 'interrupted']);

/** Simulate the queue's list schedule of `jobs` and return when each ends. */
export function scheduleJobs(jobs: readonly EtaJob[], opts: EtaOptions): EtaSchedule {
  const slots = Math.max(1, Math.floor(opts.concurrency));
  const byKey = new Map(jobs.map((j) => [j.key, j]));
  // Blocked: a pending job with a dependency that never ends or is itself blocked (to a fixed point).
  const blocked = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const j of jobs) {
      if (j.state !== 'pending' || blocked.has(j.key)) continue;
      if (j.deps.some((d) => blocked.has(d) || NEVER_ENDS.has(byKey.get(d)?.state ?? 'succeeded'))) {
        blocked.add(j.key);
        grew = true;
      }
    }
  }
  const finish = new Map<string, number>();
  const ended = (key: string, t: number): boolean => {
    const d = byKey.get(key);
    if (!d || d.state === 'succeeded') return true;
    const f = finish.get(key);
    return f !== undefined && f <= t;
  };
  // Running jobs hold a slot from now until their estimated end.
  let active: number[] = [];
  for (const j of jobs) {
    if (j.state !== 'running') continue;
    const left = j.remainingSeconds ?? Math.max(0, j.seconds - (j.elapsedSeconds ?? 0));
    finish.set(j.key, left);
    active.push(left);
  }
  const queue = jobs.filter((j) => j.state === 'pending' && !blocked.has(j.key)).sort((a, b) => b.priority - a.priority || a.order - b.order);
  let t = 0;
  while (queue.length > 0) {
    active = active.filter((f) => f > t);
    // Start, in priority order, every ready job a free slot allows …
    for (let i = 0; i < queue.length && active.length < slots; ) {
      const j = queue[i];
      if (j.deps.every((d) => ended(d, t))) {
        const end = t + j.seconds;
        finish.set(j.key, end);
        active.push(end);
        queue.splice(i, 1);
      } else i++;
    }
    // … then move on to the next end of a job.
    if (active.length === 0) break; // what is left waits on nothing that will end
    t = Math.min(...active);
  }
  let makespan = 0;
  for (const f of finish.values()) makespan = Math.max(makespan, f);
  return { makespan, finish, blocked };
}

/** A finished job's stage and how long it ran. */
export interface StageSample {
  stage: Stage;
  seconds: number;
}

/**
 * Seconds per stage: the mean of this study's measured jobs of the stage, else the mean of the
 * project's (other studies'), else the prior.
 */
export function stageCosts(study: readonly StageSample[], project: readonly StageSample[] = []): Record<Stage, number> {
  const mean = (samples: readonly StageSample[], stage: Stage): number | null => {
    const xs = samples.filter((s) => s.stage === stage).map((s) => s.seconds);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  };
  const out = { ...PRIOR_SECONDS };
  for (const stage of Object.keys(out) as Stage[]) out[stage] = mean(study, stage) ?? mean(project, stage) ?? PRIOR_SECONDS[stage];
  return out;
}

/** Measured durations of a study's succeeded jobs, from their queue entries' start and end times. */
export function measuredSamples(jobs: readonly Pick<StudyJob, 'key' | 'stage'>[], entries: readonly { key: string; state: QueueJobState; startedAt: string | null; endedAt: string | null }[]): StageSample[] {
  const stageOf = new Map(jobs.map((j) => [j.key, j.stage]));
  const out: StageSample[] = [];
  for (const e of entries) {
    const stage = stageOf.get(e.key);
    if (e.state !== 'succeeded' || !stage || !e.startedAt || !e.endedAt) continue;
    const seconds = (Date.parse(e.endedAt) - Date.parse(e.startedAt)) / 1000;
    if (Number.isFinite(seconds) && seconds >= 0) out.push({ stage, seconds });
  }
  return out;
}
