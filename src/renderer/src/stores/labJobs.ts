/**
 * Jobs the Datasets and Backbones pages start (dataset imports and derivations, backbone
 * inspection and import, pre-training, feature extraction), followed through job events: state,
 * progress with ETA, and the per-step metric series that feed the live loss curves. One
 * subscription serves every page, so a curve keeps its points when the user navigates away
 * and back while the job runs.
 */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { JobEvent, JobInfo, JobSpecInput, Progress } from '../../../shared/contract/jobs';
import { useLabClient } from '../client';

/** One metric point as the worker sent it: `values` at `step` of series `name`. */
export interface MetricPoint {
  step: number;
  values: Record<string, number>;
}

export interface TrackedJob {
  info: JobInfo;
  progress: Progress | null;
  /** Metric series by name (e.g. `loss` per step, `epoch` per epoch), in arrival order. */
  series: Record<string, MetricPoint[]>;
  /** The worker's log lines, newest last. */
  logs: Array<{ level: 'info' | 'warn' | 'error'; message: string }>;
}

/** Kinds this store follows; the Environment page and the experiment queue follow their own. */
const FOLLOWED = new Set(['dataset', 'backbone', 'pretrain', 'features', 'demo']);
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
/** Points kept per series; older ones are thinned out by half when it is exceeded. */
const MAX_POINTS = 4000;
const POLL_MS = 2000;

export function isTerminal(info: JobInfo): boolean {
  return TERMINAL.has(info.state);
}

export const useLabJobsStore = defineStore('labJobs', () => {
  const client = useLabClient();
  const jobs = ref<Record<string, TrackedJob>>({});
  const waiters = new Map<string, Array<(info: JobInfo) => void>>();
  let subscribed = false;

  function track(info: JobInfo): TrackedJob {
    const known = jobs.value[info.id];
    if (known) {
      known.info = info;
      if (info.progress) known.progress = info.progress;
      return known;
    }
    jobs.value[info.id] = { info, progress: info.progress, series: {}, logs: [] };
    return jobs.value[info.id];
  }

  function settle(info: JobInfo): void {
    track(info);
    if (!isTerminal(info)) return;
    for (const resolve of waiters.get(info.id) ?? []) resolve(info);
    waiters.delete(info.id);
  }

  function onEvent(e: JobEvent): void {
    if (e.type === 'state') {
      if (FOLLOWED.has(e.job.spec.kind)) settle(e.job);
      return;
    }
    const job = jobs.value[e.jobId];
    if (!job) return;
    if (e.type === 'progress') {
      if (!isTerminal(job.info)) job.progress = e.progress;
    } else if (e.type === 'metric') {
      const list = (job.series[e.name] ??= []);
      list.push({ step: e.step, values: e.values });
      if (list.length > MAX_POINTS) job.series[e.name] = list.filter((_, i) => i % 2 === 0 || i === list.length - 1);
    } else {
      job.logs.push({ level: e.level, message: e.message });
      if (job.logs.length > 200) job.logs.splice(0, job.logs.length - 200);
    }
  }

  /** Subscribe to job events (once) and pick up the jobs the backend already knows. */
  async function load(): Promise<void> {
    if (!subscribed) {
      client.on('job', onEvent);
      subscribed = true;
    }
    for (const info of await client.api.jobs.list({})) if (FOLLOWED.has(info.spec.kind)) settle(info);
  }

  /** Start a job and return its info at once; follow it through `jobs`. */
  async function start(spec: JobSpecInput): Promise<JobInfo> {
    await load();
    const info = await client.api.jobs.start({ spec });
    // Events may have overtaken the answer: keep whatever is newer.
    if (!jobs.value[info.id]) track(info);
    return info;
  }

  /**
   * Resolve with the job's final info. Events drive it; a slow poll covers events lost to a
   * dropped connection.
   */
  function wait(id: string): Promise<JobInfo> {
    const known = jobs.value[id]?.info;
    if (known && isTerminal(known)) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        client.api.jobs.get({ id }).then(settle, () => undefined);
      }, POLL_MS);
      const list = waiters.get(id) ?? [];
      list.push((info) => {
        clearInterval(timer);
        resolve(info);
      });
      waiters.set(id, list);
    });
  }

  /** Start a job and wait for it; throws the job's error when it fails or is cancelled. */
  async function run(spec: JobSpecInput, onStarted?: (info: JobInfo) => void): Promise<unknown> {
    const started = await start(spec);
    onStarted?.(started);
    const done = await wait(started.id);
    if (done.state === 'succeeded') return done.result;
    throw new Error(done.error?.message ?? `the ${spec.kind} job was ${done.state}`);
  }

  async function cancel(id: string): Promise<void> {
    settle(await client.api.jobs.cancel({ id }));
  }

  /** Jobs of one kind, newest first. */
  function ofKind(kind: string): TrackedJob[] {
    return Object.values(jobs.value)
      .filter((j) => j.info.spec.kind === kind)
      .sort((a, b) => b.info.createdAt.localeCompare(a.info.createdAt));
  }

  return { jobs, load, start, wait, run, cancel, ofKind };
});
