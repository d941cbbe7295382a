/**
 * The experiment queue (DESIGN §1.2–1.3, §5): expands specs into jobs, runs them in worker
 * processes through a `JobRunner` with a configurable number at once (default cores − 1, at
 * least 1), highest priority first, and keeps `queue.json` in step with every change so that
 * a kill of this process at any instant leaves a queue that the next one can pick up.
 *
 * States: pending → running → succeeded | failed | cancelled | interrupted. A job whose worker
 * died (killed, out of memory) or whose queue process died is `interrupted`; `resume` puts
 * interrupted and cancelled jobs back to pending, `retry` does the same for chosen ones
 * (including failed ones). Every attempt is a new run folder, so an interrupted run stays on
 * disk, marked, next to the attempt that finished.
 *
 * Live updates (progress with ETA, loss terms, accuracy per epoch, spectra) are coalesced per
 * job by `LiveThrottle` (at most 10 events a second per job, the last always delivered), and
 * queue changes per experiment the same way.
 */
import { availableParallelism } from 'node:os';
import type {
  CompareResult,
  ExperimentDetail,
  ExperimentEvent,
  ExperimentFile,
  ExperimentJobView,
  ExperimentSummary,
  LiveProgress,
  MetricPoint,
  QueueCounts,
  QueueEntry,
  QueueJobState,
} from '../../shared/contract/experiments';
import type { JobEvent, JobInfo, JobSpecInput } from '../../shared/contract/jobs';
import type { StudyPlan, StudySpecInput } from '../../shared/contract/study';
import type { SlurmTaskView } from '../../shared/contract/executors';
import { NmlabError } from '../../shared/errors';
import { compareExperiment } from './compare';
import { planStudy } from './graph';
import { measuredSamples, scheduleJobs, stageCosts, type EtaJob, type StageSample } from './eta';
import { createRun, runFinished } from '../runs/store';
import { markInterrupted, readRunStatus, setRunStatus, appendRunLog } from '../runs/files';
import { parseStudySpec } from './spec';
import { acquireLock, createExperiment, listExperimentIds, lockHolder, readExperiment, readQueue, releaseLock, studyRunId, writeQueue } from './store';
import { LiveThrottle } from './throttle';

/** Default concurrency: one core is left to the app (and the UI). */
export function defaultConcurrency(): number {
  return Math.max(1, availableParallelism() - 1);
}

/**
 * What the queue needs of a job runner (src/core/jobs/runner.ts implements it): start a worker
 * job, cancel it, wait for it, and hear its events. An interface here keeps the queue free of
 * the worker machinery (and executors other than local processes can implement it).
 */
export interface QueueRunner {
  start(spec: JobSpecInput): JobInfo;
  cancel(id: string): JobInfo;
  wait(id: string): Promise<JobInfo>;
  onEvent(cb: (e: JobEvent) => void): () => void;
}

/**
 * A queue held outside this process — a Slurm cluster (src/core/executors/slurm.ts): its jobs
 * run there, and a study it holds is followed here rather than run by local workers.
 */
export interface ExternalQueue {
  holds(projectDir: string, id: string): Promise<boolean>;
  /**
   * Take the study and submit what is pending (on resume also what was lost); resolves once
   * submitted, with `done`: following it until nothing is pending or running.
   */
  start(projectDir: string, id: string, opts: { resume: boolean; signal: AbortSignal; onChange: () => void }): Promise<{ done: Promise<unknown> }>;
  cancel(projectDir: string, id: string): Promise<void>;
  /** Where each job is in the external queue (for the queue view); null when it does not hold the study. */
  describe(projectDir: string, id: string): Promise<Record<string, SlurmTaskView> | null>;
}

export interface ExperimentServiceOptions {
  runner: QueueRunner;
  concurrency?: number;
  /** Coalescing window of live events per job (ms). */
  liveIntervalMs?: number;
  external?: ExternalQueue;
}

interface Running {
  jobId: string | null;
  /** Cancel asked for while the worker was still being started. */
  cancelRequested: boolean;
  runId: string;
  startedAt: number;
}

interface Active {
  projectDir: string;
  exp: ExperimentFile;
  entries: QueueEntry[];
  running: Map<string, Running>;
  progress: Map<string, LiveProgress>;
  /** Measured job durations of the project's other studies, read at start (costs this study has not measured yet). */
  projectSamples: StageSample[];
  /** Job index by key. */
  index: Map<string, number>;
  saving: Promise<void>;
  dirty: boolean;
  order: number;
  waiters: Array<() => void>;
}

const ACTIVE_STATES: QueueJobState[] = ['pending', 'running'];
/** The start of the error of a job cancelled because a dependency did not succeed. */
const NOT_RUN = 'not run:';

function activeKey(projectDir: string, id: string): string {
  return `${projectDir}\u0000${id}`;
}

/** Measured durations of the succeeded jobs of the project's studies (but `except`), for stage costs. */
async function projectSamples(projectDir: string, except?: string): Promise<StageSample[]> {
  const out: StageSample[] = [];
  for (const id of await listExperimentIds(projectDir).catch(() => [] as string[])) {
    if (id === except) continue;
    try {
      const exp = await readExperiment(projectDir, id);
      out.push(...measuredSamples(exp.jobs, (await readQueue(projectDir, exp)).entries));
    } catch {
      /* a damaged study measures nothing */
    }
  }
  return out;
}

function counts(entries: QueueEntry[]): QueueCounts {
  const c: QueueCounts = { pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, interrupted: 0 };
  for (const e of entries) c[e.state]++;
  return c;
}

export class ExperimentService {
  private readonly runner: QueueRunner;
  private concurrency: number;
  private readonly active = new Map<string, Active>();
  /** Runner job id → where it belongs. */
  private readonly byJobId = new Map<string, { a: Active; key: string }>();
  private readonly listeners = new Set<(e: ExperimentEvent) => void>();
  private readonly live: LiveThrottle;
  private readonly queueThrottle: LiveThrottle;
  private launching = 0;
  private orderSeq = 0;
  private disposing = false;
  private readonly stopRunner: () => void;
  private readonly external: ExternalQueue | null;
  /** Studies followed on the external queue, with how to stop following and who waits. */
  private readonly following = new Map<string, { abort: AbortController; done: Promise<void> }>();

  constructor(opts: ExperimentServiceOptions) {
    this.runner = opts.runner;
    this.concurrency = Math.max(1, opts.concurrency ?? defaultConcurrency());
    const interval = opts.liveIntervalMs ?? 100;
    this.live = new LiveThrottle((k, batch) => this.emitLive(k, batch.progress, batch.points), interval);
    // Queue snapshots are coalesced the same way (a burst of job starts is one event).
    this.queueThrottle = new LiveThrottle((k) => this.emitQueue(k), interval);
    this.stopRunner = this.runner.onEvent((e) => this.onJobEvent(e));
    this.external = opts.external ?? null;
  }

  get defaultConcurrency(): number {
    return this.concurrency;
  }

  onEvent(cb: (e: ExperimentEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private emit(e: ExperimentEvent): void {
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch {
        /* a broken listener must not stop the queue */
      }
    }
  }

  // ---- reading ----------------------------------------------------------------------------

  /** Check a spec against the project and expand it, writing nothing (the builder's preview). */
  async plan(projectDir: string, spec: StudySpecInput): Promise<StudyPlan> {
    return planStudy(projectDir, parseStudySpec(spec, 'the study spec'), { costs: stageCosts([], await projectSamples(projectDir)), concurrency: this.concurrency });
  }

  /** Write a new experiment (every job pending); it runs once started. */
  async create(projectDir: string, spec: StudySpecInput, id?: string): Promise<ExperimentDetail> {
    const { file } = await createExperiment(projectDir, spec, id);
    return this.get(projectDir, file.id);
  }

  async list(projectDir: string): Promise<ExperimentSummary[]> {
    const out: ExperimentSummary[] = [];
    for (const id of await listExperimentIds(projectDir)) {
      try {
        out.push((await this.get(projectDir, id)).summary);
      } catch {
        /* a damaged experiment is reported by `get`, not by the list */
      }
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /**
   * The experiment as it stands. When no live process holds it but its queue says jobs are
   * running, their process died: they are marked interrupted here (under the lock) first.
   */
  async get(projectDir: string, id: string): Promise<ExperimentDetail> {
    const a = this.active.get(activeKey(projectDir, id));
    if (a) return this.detail(a);
    const exp = await readExperiment(projectDir, id);
    let entries = (await readQueue(projectDir, exp)).entries;
    if (entries.some((e) => e.state === 'running') && !(await lockHolder(projectDir, id)) && !(await this.external?.holds(projectDir, id))) {
      await acquireLock(projectDir, id);
      try {
        entries = await this.recover(projectDir, exp, entries);
      } finally {
        await releaseLock(projectDir, id);
      }
    }
    const d = this.detailOf(projectDir, exp, entries, null);
    const where = await this.external?.describe(projectDir, id);
    // Active while this process follows it (the queue view's Cancel all).
    return where ? { ...d, summary: { ...d.summary, active: this.following.has(activeKey(projectDir, id)) }, jobs: d.jobs.map((j) => ({ ...j, slurm: where[j.key] ?? null })) } : d;
  }

  async compare(projectDir: string, id: string): Promise<CompareResult> {
    const d = await this.get(projectDir, id);
    const exp = this.active.get(activeKey(projectDir, id))?.exp ?? (await readExperiment(projectDir, id));
    return compareExperiment(projectDir, exp, d.jobs);
  }

  private detail(a: Active): ExperimentDetail {
    return this.detailOf(a.projectDir, a.exp, a.entries, a);
  }

  private detailOf(projectDir: string, exp: ExperimentFile, entries: QueueEntry[], a: Active | null): ExperimentDetail {
    const byKey = new Map(entries.map((e) => [e.key, e]));
    const jobs: ExperimentJobView[] = exp.jobs.map((j) => {
      const e = byKey.get(j.key)!;
      const { key: _key, ...rest } = e;
      void _key;
      return { ...j, ...rest, progress: a?.progress.get(j.key) ?? null };
    });
    return { summary: this.summaryOf(exp, entries, a), spec: exp.spec, jobs, concurrency: this.concurrency };
  }

  private summaryOf(exp: ExperimentFile, entries: QueueEntry[], a: Active | null): ExperimentSummary {
    const c = counts(entries);
    return { id: exp.id, name: exp.spec.name, layout: exp.spec.layout, createdAt: exp.createdAt, total: entries.length, counts: c, active: a !== null, etaSeconds: a ? this.eta(a) : null };
  }

  /**
   * Remaining time of a study: when its last job ends in the queue's schedule of every study
   * this process runs (./eta.ts), at this study's measured stage costs (the project's, then
   * priors, where it has none).
   */
  private eta(a: Active): number | null {
    const now = Date.now();
    const jobs: EtaJob[] = [];
    for (const b of this.active.values()) {
      const costs = stageCosts(measuredSamples(b.exp.jobs, b.entries), b.projectSamples);
      const id = (key: string) => `${b.order}\u0000${key}`;
      b.entries.forEach((e, index) => {
        const job = b.exp.jobs[b.index.get(e.key)!];
        const r = b.running.get(e.key);
        jobs.push({
          key: id(e.key),
          seconds: costs[job.stage],
          deps: job.deps.map(id),
          state: e.state,
          priority: e.priority,
          // The queue's tie-break: older study first, then job order.
          order: b.order * 1e7 + index,
          ...(e.state === 'running' ? { elapsedSeconds: r ? (now - r.startedAt) / 1000 : 0, remainingSeconds: b.progress.get(e.key)?.etaSeconds ?? null } : {}),
        });
      });
    }
    const { finish } = scheduleJobs(jobs, { concurrency: this.concurrency });
    let last = 0;
    for (const e of a.entries) last = Math.max(last, finish.get(`${a.order}\u0000${e.key}`) ?? 0);
    return last;
  }

  // ---- running ----------------------------------------------------------------------------

  /**
   * Run the experiment's pending jobs (taking its lock). Jobs left `running` by a process that
   * died are settled first: finished on disk → succeeded, otherwise interrupted. With `pick`,
   * the entries it selects are put back to pending before the queue runs.
   */
  async start(projectDir: string, id: string, opts: { concurrency?: number } = {}, pick?: (e: QueueEntry) => boolean): Promise<ExperimentDetail> {
    if (this.disposing) throw new NmlabError('UNSUPPORTED', 'the experiment queue is shutting down');
    if (opts.concurrency !== undefined) this.concurrency = Math.max(1, Math.floor(opts.concurrency));
    const k = activeKey(projectDir, id);
    let a = this.active.get(k);
    if (!a && (await this.external?.holds(projectDir, id))) return this.follow(projectDir, id, pick !== undefined);
    if (!a) {
      const exp = await readExperiment(projectDir, id);
      await acquireLock(projectDir, id);
      try {
        const entries = await this.recover(projectDir, exp, (await readQueue(projectDir, exp)).entries);
        const others = await projectSamples(projectDir, id);
        a = { projectDir, exp, entries, running: new Map(), progress: new Map(), projectSamples: others, index: new Map(exp.jobs.map((j, i) => [j.key, i])), saving: Promise.resolve(), dirty: false, order: this.orderSeq++, waiters: [] };
      } catch (err) {
        await releaseLock(projectDir, id);
        throw err;
      }
      this.active.set(k, a);
    }
    if (pick) {
      for (const e of a.entries) {
        // Jobs that were only blocked by a dependency go back too; `block` settles them again
        // if that dependency is still not re-queued.
        if (e.state !== 'running' && e.state !== 'pending' && (pick(e) || (e.state === 'cancelled' && e.error?.startsWith(NOT_RUN)))) {
          e.state = 'pending';
          e.error = null;
          e.endedAt = null;
        }
      }
    }
    this.changed(a);
    this.pump();
    await this.maybeFinish(a);
    return this.get(projectDir, id);
  }

  /** Put interrupted and cancelled jobs back in the queue and run it. */
  async resume(projectDir: string, id: string, opts: { concurrency?: number } = {}): Promise<ExperimentDetail> {
    return this.start(projectDir, id, opts, (e) => e.state === 'interrupted' || e.state === 'cancelled');
  }

  /** Put the named jobs (or every failed, cancelled and interrupted one) back in the queue and run it. */
  async retry(projectDir: string, id: string, keys?: string[]): Promise<ExperimentDetail> {
    const want = keys ? new Set(keys) : null;
    if (want) {
      const exp = this.active.get(activeKey(projectDir, id))?.exp ?? (await readExperiment(projectDir, id));
      for (const key of want) if (!exp.jobs.some((j) => j.key === key)) throw new NmlabError('NOT_FOUND', `experiment "${id}" has no job "${key}"`);
    }
    return this.start(projectDir, id, {}, (e) => ['failed', 'cancelled', 'interrupted'].includes(e.state) && (!want || want.has(e.key)));
  }

  /** Cancel one job, or (without `key`) every pending and running job of the experiment. */
  async cancel(projectDir: string, id: string, key?: string): Promise<ExperimentDetail> {
    const a = this.active.get(activeKey(projectDir, id));
    if (!a && key === undefined && (await this.external?.holds(projectDir, id))) {
      await this.external!.cancel(projectDir, id);
      return this.get(projectDir, id);
    }
    if (!a) {
      const holder = await lockHolder(projectDir, id);
      if (holder && !holder.self) throw new NmlabError('UNSUPPORTED', `experiment "${id}" is run by process ${holder.pid}; cancel it there`);
      return this.get(projectDir, id);
    }
    if (key !== undefined && !a.entries.some((e) => e.key === key)) throw new NmlabError('NOT_FOUND', `experiment "${id}" has no job "${key}"`);
    for (const e of a.entries) {
      if (key !== undefined && e.key !== key) continue;
      if (e.state === 'pending') {
        e.state = 'cancelled';
        e.endedAt = new Date().toISOString();
        e.error = 'cancelled before it started';
      } else if (e.state === 'running') {
        const r = a.running.get(e.key);
        if (r) r.cancelRequested = true;
        if (r?.jobId) this.runner.cancel(r.jobId);
      }
    }
    this.changed(a);
    await this.maybeFinish(a);
    return this.get(projectDir, id);
  }

  async setPriority(projectDir: string, id: string, key: string, priority: number): Promise<ExperimentDetail> {
    const a = this.active.get(activeKey(projectDir, id));
    if (a) {
      const e = a.entries.find((x) => x.key === key);
      if (!e) throw new NmlabError('NOT_FOUND', `experiment "${id}" has no job "${key}"`);
      e.priority = priority;
      this.changed(a);
      return this.detail(a);
    }
    const holder = await lockHolder(projectDir, id);
    if (holder && !holder.self) throw new NmlabError('UNSUPPORTED', `experiment "${id}" is run by process ${holder.pid}; change priorities there`);
    const exp = await readExperiment(projectDir, id);
    const entries = (await readQueue(projectDir, exp)).entries;
    const e = entries.find((x) => x.key === key);
    if (!e) throw new NmlabError('NOT_FOUND', `experiment "${id}" has no job "${key}"`);
    e.priority = priority;
    await writeQueue(projectDir, id, entries);
    return this.get(projectDir, id);
  }

  /** Resolves when the experiment has no pending or running job in this process. */
  waitIdle(projectDir: string, id: string): Promise<void> {
    const f = this.following.get(activeKey(projectDir, id));
    if (f) return f.done;
    const a = this.active.get(activeKey(projectDir, id));
    if (!a) return Promise.resolve();
    return new Promise((resolve) => a.waiters.push(resolve));
  }

  /**
   * Stop: running jobs are killed and marked interrupted (resumable), the queue is saved and
   * every lock released.
   */
  async dispose(): Promise<void> {
    this.disposing = true;
    // Studies on the external queue go on there; only the following stops.
    for (const f of this.following.values()) f.abort.abort();
    await Promise.all([...this.following.values()].map((f) => f.done));
    const all = [...this.active.values()];
    const waits = all.flatMap((a) => [...a.running.values()].map((r) => (r.jobId ? this.runner.wait(r.jobId) : Promise.resolve(null))));
    for (const a of all) for (const r of a.running.values()) if (r.jobId) this.runner.cancel(r.jobId);
    await Promise.all(waits);
    for (const a of all) {
      this.changed(a);
      // A cancelled job's end may queue one more save while this one runs: drain them all, so
      // nothing writes into the project once dispose() has returned.
      let last: Promise<void>;
      do {
        last = a.saving;
        await last;
      } while (a.saving !== last);
      await releaseLock(a.projectDir, a.exp.id).catch(() => undefined);
    }
    this.active.clear();
    this.live.dispose();
    this.queueThrottle.dispose();
    this.stopRunner();
  }

  // ---- internals --------------------------------------------------------------------------

  /** Follow a study the external queue holds (once per study), with queue events as it changes. */
  private async follow(projectDir: string, id: string, resume: boolean): Promise<ExperimentDetail> {
    const k = activeKey(projectDir, id);
    if (!this.following.has(k)) {
      const abort = new AbortController();
      const emit = () =>
        void this.get(projectDir, id)
          .then((d) => this.emit({ type: 'queue', projectDir, experimentId: id, summary: { ...d.summary, active: this.following.has(k) }, jobs: d.jobs }))
          .catch(() => undefined);
      const started = await this.external!.start(projectDir, id, { resume, signal: abort.signal, onChange: emit });
      const done = started.done
        .catch(() => undefined)
        .finally(() => {
          this.following.delete(k);
          emit();
        });
      this.following.set(k, { abort, done: done.then(() => undefined) });
    }
    return this.get(projectDir, id);
  }

  /** Settle entries a dead process left `running`. */
  private async recover(projectDir: string, exp: ExperimentFile, entries: QueueEntry[]): Promise<QueueEntry[]> {
    let changed = false;
    for (const e of entries) {
      if (e.state !== 'running') continue;
      changed = true;
      e.endedAt = new Date().toISOString();
      const st = e.runId ? await readRunStatus(projectDir, e.runId).catch(() => null) : null;
      if (e.runId && st?.status === 'succeeded' && (await runFinished(projectDir, e.runId))) {
        e.state = 'succeeded';
        e.error = null;
        continue;
      }
      e.state = 'interrupted';
      e.error = 'the process running the queue ended while this job ran';
      if (e.runId) await markInterrupted(projectDir, e.runId, e.error);
    }
    if (changed) await writeQueue(projectDir, exp.id, entries);
    return entries;
  }

  /** Persist (coalesced: one write in flight, the latest state written next) and notify. */
  private changed(a: Active): void {
    a.dirty = true;
    a.saving = a.saving.then(async () => {
      if (!a.dirty) return;
      a.dirty = false;
      await writeQueue(a.projectDir, a.exp.id, a.entries.map((e) => ({ ...e, runIds: [...e.runIds] })));
    });
    a.saving.catch(() => undefined);
    this.queueThrottle.mark(activeKey(a.projectDir, a.exp.id));
  }

  private emitQueue(k: string): void {
    const a = this.active.get(k) ?? this.finished.get(k);
    if (!a) return;
    const d = this.detail(a);
    this.emit({ type: 'queue', projectDir: a.projectDir, experimentId: a.exp.id, summary: { ...d.summary, active: this.active.has(k) }, jobs: d.jobs });
  }

  /** Recently finished experiments, so their last queue event can still be sent. */
  private readonly finished = new Map<string, Active>();

  private emitLive(streamKey: string, progress: LiveProgress | null, points: MetricPoint[]): void {
    const [k, key] = streamKey.split('\u0001');
    const a = this.active.get(k) ?? this.finished.get(k);
    if (!a) return;
    this.emit({ type: 'live', projectDir: a.projectDir, experimentId: a.exp.id, key, runId: a.entries.find((e) => e.key === key)?.runId ?? null, progress, points });
  }

  private runningCount(): number {
    let n = this.launching;
    for (const a of this.active.values()) n += a.running.size;
    return n;
  }

  /**
   * A pending job whose dependency failed, was cancelled or was interrupted cannot run: it is
   * marked cancelled with the reason (resume and retry put it back once the dependency is
   * re-queued). Dependencies always come earlier in the job order, so one pass settles all.
   */
  private block(a: Active): void {
    let changed = false;
    for (const e of a.entries) {
      if (e.state !== 'pending') continue;
      const job = a.exp.jobs[a.index.get(e.key)!];
      for (const d of job.deps) {
        const dep = a.entries[a.index.get(d)!];
        if (dep.state === 'failed' || dep.state === 'cancelled' || dep.state === 'interrupted') {
          e.state = 'cancelled';
          e.error = `${NOT_RUN} it needs "${d}", which ${dep.state === 'cancelled' ? 'was cancelled' : dep.state === 'interrupted' ? 'was interrupted' : `failed (${dep.error ?? 'no reason given'})`}`;
          e.endedAt = new Date().toISOString();
          changed = true;
          break;
        }
      }
    }
    if (changed) this.changed(a);
  }

  /** Whether every dependency of a job has succeeded. */
  private ready(a: Active, index: number): boolean {
    return a.exp.jobs[index].deps.every((d) => a.entries[a.index.get(d)!].state === 'succeeded');
  }

  /** Start jobs while slots are free: ready ones (dependencies done), highest priority first, then older experiment, then job order. */
  private pump(): void {
    if (this.disposing) return;
    for (const a of this.active.values()) this.block(a);
    while (this.runningCount() < this.concurrency) {
      let best: { a: Active; e: QueueEntry; index: number } | null = null;
      for (const a of this.active.values()) {
        a.entries.forEach((e, index) => {
          if (e.state !== 'pending' || a.running.has(e.key) || !this.ready(a, index)) return;
          if (!best || e.priority > best.e.priority || (e.priority === best.e.priority && (a.order < best.a.order || (a.order === best.a.order && index < best.index)))) best = { a, e, index };
        });
      }
      if (!best) return;
      const { a, e, index } = best;
      void this.launch(a, e, index);
    }
  }

  private async launch(a: Active, e: QueueEntry, index: number): Promise<void> {
    const job = a.exp.jobs[index];
    e.state = 'running';
    e.attempts += 1;
    e.error = null;
    e.startedAt = new Date().toISOString();
    e.endedAt = null;
    const runId = studyRunId(a.exp.id, index, e.attempts);
    e.runId = runId;
    e.runIds.push(runId);
    const slot: Running = { jobId: null, cancelRequested: false, runId, startedAt: Date.now() };
    a.running.set(e.key, slot);
    this.launching++;
    try {
      await createRun(a.projectDir, { id: runId, kind: `study.${job.stage}`, experimentId: a.exp.id, jobKey: job.key, attempt: e.attempts, createdAt: e.startedAt, job });
      // The queue file names the run before any worker touches it.
      this.changed(a);
      await a.saving;
      if (this.disposing) throw new NmlabError('CANCELLED', 'the queue shut down before the job started');
      const info = this.runner.start({ kind: 'study', projectDir: a.projectDir, experimentId: a.exp.id, jobKey: job.key, runId, attempt: e.attempts });
      slot.jobId = info.id;
      this.byJobId.set(info.id, { a, key: e.key });
      if (slot.cancelRequested) this.runner.cancel(info.id);
    } catch (err) {
      a.running.delete(e.key);
      e.state = this.disposing ? 'interrupted' : 'failed';
      e.error = err instanceof Error ? err.message : String(err);
      e.endedAt = new Date().toISOString();
      await setRunStatus(a.projectDir, runId, e.state, { error: e.error }).catch(() => undefined);
      this.changed(a);
    } finally {
      this.launching--;
    }
    this.pump();
    await this.maybeFinish(a);
  }

  private onJobEvent(ev: JobEvent): void {
    const jobId = ev.type === 'state' ? ev.job.id : ev.jobId;
    const where = this.byJobId.get(jobId);
    if (!where) return;
    const { a, key } = where;
    const stream = `${activeKey(a.projectDir, a.exp.id)}\u0001${key}`;
    switch (ev.type) {
      case 'progress':
        a.progress.set(key, ev.progress);
        this.live.progress(stream, ev.progress);
        break;
      case 'metric':
        this.live.point(stream, { series: ev.name, step: ev.step, values: ev.values });
        break;
      case 'log':
        break;
      case 'state':
        if (ev.job.state === 'succeeded' || ev.job.state === 'failed' || ev.job.state === 'cancelled') {
          this.byJobId.delete(jobId);
          // Deliver the job's last live state before it settles, so anyone told the experiment
          // has finished has already seen every job's final progress.
          this.live.end(stream);
          void this.settle(a, key, ev.job.state, ev.job.error);
        }
        break;
    }
  }

  private async settle(a: Active, key: string, state: 'succeeded' | 'failed' | 'cancelled', error: { code: string; message: string } | null): Promise<void> {
    const e = a.entries.find((x) => x.key === key)!;
    a.running.delete(key);
    const runId = e.runId!;
    if (state === 'succeeded') {
      e.state = 'succeeded';
    } else if (this.disposing || error?.code === 'WORKER_CRASHED') {
      e.state = 'interrupted';
      await markInterrupted(a.projectDir, runId, error?.message ?? 'the queue shut down while this job ran').catch(() => undefined);
    } else if (state === 'cancelled') {
      e.state = 'cancelled';
      await setRunStatus(a.projectDir, runId, 'cancelled', { error: error?.message ?? 'cancelled' }).catch(() => undefined);
      await appendRunLog(a.projectDir, runId, `cancelled: ${error?.message ?? ''}`).catch(() => undefined);
    } else {
      e.state = 'failed';
      await setRunStatus(a.projectDir, runId, 'failed', { error: error?.message ?? 'failed' }).catch(() => undefined);
      await appendRunLog(a.projectDir, runId, `failed: ${error?.message ?? ''}`).catch(() => undefined);
    }
    e.error = state === 'succeeded' ? null : (error?.message ?? state);
    e.endedAt = new Date().toISOString();
    a.progress.delete(key);
    this.changed(a);
    this.pump();
    await this.maybeFinish(a);
  }

  /** When nothing is pending or running: save, release the lock, wake waiters. */
  private async maybeFinish(a: Active): Promise<void> {
    const k = activeKey(a.projectDir, a.exp.id);
    if (this.active.get(k) !== a) return;
    if (a.running.size > 0 || a.entries.some((e) => ACTIVE_STATES.includes(e.state))) return;
    this.active.delete(k);
    this.finished.set(k, a);
    this.changed(a);
    await a.saving;
    await releaseLock(a.projectDir, a.exp.id).catch(() => undefined);
    this.queueThrottle.end(k);
    this.finished.delete(k);
    for (const w of a.waiters.splice(0)) w();
  }
}
