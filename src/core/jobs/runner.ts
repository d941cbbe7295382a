/**
 * The job runner: one interface for the CLI, the server and Electron (DESIGN §2). Each job
 * runs in its own worker process started by a `WorkerLauncher`; the runner tracks its state
 * (queued → running → succeeded | failed | cancelled), turns worker messages into `JobEvent`s,
 * estimates the ETA from the observed rate, cancels (a polite message, then a kill after a
 * grace period) and reports a worker that dies without finishing as a failed job with code
 * WORKER_CRASHED, and carries on.
 */
import { randomBytes } from 'node:crypto';
import { JobSpec, type JobEvent, type JobInfo, type JobSpecInput, type Progress } from '../../shared/contract/jobs';
import { NmlabError, type SerializedError } from '../../shared/errors';
import { forkLauncher, resolveWorkerEntry, type WorkerHandle, type WorkerLauncher } from './launcher';
import { isWorkerMessage, type ParentMessage, type WorkerMessage } from './protocol';

export interface JobRunnerOptions {
  /** Starts worker processes; `forkLauncher` by default. */
  launcher?: WorkerLauncher;
  /** The worker script; `resolveWorkerEntry()` by default (resolved when a job starts). */
  entry?: string;
  /** Jobs running at once; the rest wait in `queued`. Default 2. */
  maxConcurrent?: number;
  /** How long a cancelled worker gets to stop by itself before it is killed. Default 3000 ms. */
  cancelGraceMs?: number;
  /** The cores each job may use, asked when it starts (default: no limit, every core). */
  threadsPerJob?: () => number;
}

interface Running {
  handle: WorkerHandle;
  pid: number | undefined;
  /** The worker's terminal message, once received. */
  outcome: { kind: 'done'; result: unknown } | { kind: 'error'; error: SerializedError } | null;
  cancelRequested: boolean;
  killTimer: NodeJS.Timeout | null;
  /** First progress report, the base of the rate estimate. */
  rateBase: { at: number; done: number } | null;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

function newJobId(): string {
  return `job-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Describe how a process ended, for the WORKER_CRASHED message. */
function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `was killed by signal ${signal}`;
  if (code !== null) return `exited with code ${code}`;
  return 'ended for an unknown reason';
}

export class JobRunner {
  private readonly launcher: WorkerLauncher;
  private readonly entry: string | undefined;
  private readonly maxConcurrent: number;
  private readonly cancelGraceMs: number;
  private readonly threadsPerJob: (() => number) | undefined;
  private readonly jobs = new Map<string, JobInfo>();
  private readonly running = new Map<string, Running>();
  private readonly queue: string[] = [];
  private readonly listeners = new Set<(e: JobEvent) => void>();
  private readonly waiters = new Map<string, Array<(job: JobInfo) => void>>();
  private disposed = false;

  constructor(options: JobRunnerOptions = {}) {
    this.launcher = options.launcher ?? forkLauncher;
    this.entry = options.entry;
    this.maxConcurrent = Math.max(1, options.maxConcurrent ?? 2);
    this.cancelGraceMs = options.cancelGraceMs ?? 3000;
    this.threadsPerJob = options.threadsPerJob;
  }

  /** Subscribe to every job's events; returns the unsubscribe function. */
  onEvent(cb: (e: JobEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /**
   * Queue a job; it starts as soon as a slot is free. Returns its info at once. The spec is
   * validated (and defaulted) here too, since in-process callers bypass the contract.
   */
  start(specInput: JobSpecInput): JobInfo {
    if (this.disposed) throw new NmlabError('UNSUPPORTED', 'the job runner has been shut down');
    const parsed = JobSpec.safeParse(specInput);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new NmlabError('BAD_REQUEST', `invalid job spec (${issues})`);
    }
    const job: JobInfo = {
      id: newJobId(),
      spec: parsed.data,
      state: 'queued',
      createdAt: new Date().toISOString(),
      startedAt: null,
      endedAt: null,
      progress: null,
      error: null,
    };
    this.jobs.set(job.id, job);
    this.queue.push(job.id);
    this.emit({ type: 'state', job: this.snapshot(job) });
    this.pump();
    return this.get(job.id);
  }

  get(id: string): JobInfo {
    const job = this.jobs.get(id);
    if (!job) throw new NmlabError('NOT_FOUND', `no job with id "${id}" in this session`);
    return this.snapshot(job);
  }

  /** All jobs of this session, oldest first. */
  list(): JobInfo[] {
    return [...this.jobs.values()].map((j) => this.snapshot(j));
  }

  /** The OS process id of a running job's worker (for diagnostics and tests). */
  workerPid(id: string): number | undefined {
    return this.running.get(id)?.pid;
  }

  /** Resolves with the job's final info once it has succeeded, failed or been cancelled. */
  wait(id: string): Promise<JobInfo> {
    const job = this.get(id);
    if (TERMINAL.has(job.state)) return Promise.resolve(job);
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }

  /**
   * Ask a job to stop. A queued job is cancelled at once; a running one is sent `cancel` and
   * killed if it has not ended after the grace period. Returns the info as it is now (the state
   * becomes `cancelled` once the worker has gone). Cancelling a finished job changes nothing.
   */
  cancel(id: string): JobInfo {
    const job = this.jobs.get(id);
    if (!job) throw new NmlabError('NOT_FOUND', `no job with id "${id}" in this session`);
    if (job.state === 'queued') {
      this.queue.splice(this.queue.indexOf(id), 1);
      this.finish(job, 'cancelled', { name: 'NmlabError', code: 'CANCELLED', message: 'cancelled before it started' });
    } else if (job.state === 'running') {
      const run = this.running.get(id);
      if (run && !run.cancelRequested) {
        run.cancelRequested = true;
        run.handle.postMessage({ type: 'cancel' } satisfies ParentMessage);
        run.killTimer = setTimeout(() => run.handle.kill(), this.cancelGraceMs);
      }
    }
    return this.snapshot(job);
  }

  /** Cancel everything and wait for every worker to be gone. */
  async dispose(): Promise<void> {
    this.disposed = true;
    for (const id of [...this.queue]) this.cancel(id);
    const pending = [...this.running.entries()].map(([id, run]) => {
      const waiting = this.wait(id);
      // Reported as cancelled (the user shut down), not as a crash.
      run.cancelRequested = true;
      run.handle.kill();
      return waiting;
    });
    await Promise.all(pending);
  }

  private emit(e: JobEvent): void {
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch {
        // A broken listener must not stop the runner or the other listeners.
      }
    }
  }

  private snapshot(job: JobInfo): JobInfo {
    return structuredClone(job);
  }

  private pump(): void {
    while (this.running.size < this.maxConcurrent && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.launch(this.jobs.get(id)!);
    }
  }

  private launch(job: JobInfo): void {
    let handle: WorkerHandle;
    try {
      handle = this.launcher(this.entry ?? resolveWorkerEntry());
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      job.startedAt = new Date().toISOString();
      this.finish(job, 'failed', { name: 'NmlabError', code: err instanceof NmlabError ? err.code : 'WORKER_CRASHED', message: `could not start a worker for job ${job.id}: ${message}` });
      return;
    }
    const run: Running = { handle, pid: handle.pid, outcome: null, cancelRequested: false, killTimer: null, rateBase: null };
    this.running.set(job.id, run);
    job.state = 'running';
    job.startedAt = new Date().toISOString();
    this.emit({ type: 'state', job: this.snapshot(job) });

    handle.onMessage((m) => {
      if (isWorkerMessage(m)) this.onWorkerMessage(job, run, m);
    });
    handle.onExit((code, signal) => this.onWorkerExit(job, run, code, signal));
  }

  private onWorkerMessage(job: JobInfo, run: Running, m: WorkerMessage): void {
    if (run.outcome) return;
    switch (m.type) {
      case 'ready':
        if (m.pid) run.pid = m.pid;
        // Cancelled while the process was starting: there is nothing to stop politely.
        if (run.cancelRequested) run.handle.kill();
        else {
          const threads = this.threadsPerJob?.();
          run.handle.postMessage({ type: 'start', jobId: job.id, spec: job.spec, ...(threads !== undefined ? { threads: Math.max(1, Math.floor(threads)) } : {}) } satisfies ParentMessage);
        }
        break;
      case 'progress': {
        const progress = this.withEta(run, m.progress, typeof m.at === 'number' ? m.at : Date.now());
        job.progress = progress;
        this.emit({ type: 'progress', jobId: job.id, progress });
        break;
      }
      case 'metric':
        this.emit({ type: 'metric', jobId: job.id, name: m.name, step: m.step, values: m.values });
        break;
      case 'log':
        this.emit({ type: 'log', jobId: job.id, level: m.level, message: m.message });
        break;
      case 'done':
        run.outcome = { kind: 'done', result: m.result };
        this.expectExit(run);
        break;
      case 'error':
        run.outcome = { kind: 'error', error: m.error };
        this.expectExit(run);
        break;
    }
  }

  /** A worker exits by itself after its last message; one that lingers (a stuck native thread) is killed. */
  private expectExit(run: Running): void {
    if (run.killTimer) clearTimeout(run.killTimer);
    run.killTimer = setTimeout(() => run.handle.kill(), 5000);
  }

  /**
   * ETA from the rate observed since the first progress report (not since launch, so process
   * start-up and module loading do not count as work). Times are the worker's own, so a busy
   * parent that receives several reports at once still sees the true rate.
   */
  private withEta(run: Running, p: Omit<Progress, 'etaSeconds'>, now: number): Progress {
    if (!run.rateBase || p.done < run.rateBase.done) run.rateBase = { at: now, done: p.done };
    const doneSince = p.done - run.rateBase.done;
    const seconds = (now - run.rateBase.at) / 1000;
    let etaSeconds: number | null = null;
    if (p.done >= p.total) etaSeconds = 0;
    else if (doneSince > 0 && seconds > 0) etaSeconds = ((p.total - p.done) * seconds) / doneSince;
    return { ...p, etaSeconds };
  }

  /** The job ends when its worker has gone; what it said last decides how. */
  private onWorkerExit(job: JobInfo, run: Running, code: number | null, signal: string | null): void {
    if (run.killTimer) clearTimeout(run.killTimer);
    this.running.delete(job.id);
    const outcome = run.outcome;
    if (outcome?.kind === 'done') {
      job.result = outcome.result;
      this.finish(job, 'succeeded', null);
    } else if (outcome?.kind === 'error' && outcome.error.code === 'CANCELLED') {
      this.finish(job, 'cancelled', outcome.error);
    } else if (outcome?.kind === 'error') {
      this.finish(job, 'failed', outcome.error);
    } else if (run.cancelRequested) {
      this.finish(job, 'cancelled', { name: 'NmlabError', code: 'CANCELLED', message: `cancelled; the worker did not stop within ${this.cancelGraceMs} ms and was killed` });
    } else {
      const where = job.progress ? ` at ${job.progress.done} of ${job.progress.total}` : '';
      this.finish(job, 'failed', {
        name: 'NmlabError',
        code: 'WORKER_CRASHED',
        message: `the worker for job ${job.id} (${job.spec.kind}) ${describeExit(code, signal)}${where} without finishing`,
      });
    }
    this.pump();
  }

  private finish(job: JobInfo, state: 'succeeded' | 'failed' | 'cancelled', error: SerializedError | null): void {
    job.state = state;
    job.endedAt = new Date().toISOString();
    job.error = error;
    const snap = this.snapshot(job);
    this.emit({ type: 'state', job: snap });
    const waiting = this.waiters.get(job.id) ?? [];
    this.waiters.delete(job.id);
    for (const resolve of waiting) resolve(this.snapshot(job));
  }
}
