import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { JobRunner } from '../../src/core/jobs/runner';
import type { JobEvent, JobInfo } from '../../src/shared/contract/jobs';

const fixtures = join(__dirname, '..', 'fixtures', 'workers');
const runners: JobRunner[] = [];

function makeRunner(opts: ConstructorParameters<typeof JobRunner>[0] = {}): { runner: JobRunner; events: Array<{ at: number; e: JobEvent }> } {
  const runner = new JobRunner(opts);
  runners.push(runner);
  const events: Array<{ at: number; e: JobEvent }> = [];
  runner.onEvent((e) => events.push({ at: performance.now(), e }));
  return { runner, events };
}

afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.dispose()));
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolve when `pred` holds for an event of the runner (or reject after `ms`). */
function nextEvent(runner: JobRunner, pred: (e: JobEvent) => boolean, ms = 20_000): Promise<JobEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error('timed out waiting for an event'));
    }, ms);
    const stop = runner.onEvent((e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      stop();
      resolve(e);
    });
  });
}

describe('JobRunner with forked workers', () => {
  it('streams selftest progress in order with an ETA from the observed rate', async () => {
    const { runner, events } = makeRunner();
    const job = runner.start({ kind: 'selftest', steps: 6, intervalMs: 80 });
    const final = await runner.wait(job.id);
    expect(final.state).toBe('succeeded');
    expect(final.result).toMatchObject({ steps: 6 });

    const states = events.filter(({ e }) => e.type === 'state').map(({ e }) => (e as { job: JobInfo }).job.state);
    expect(states).toEqual(['queued', 'running', 'succeeded']);

    const progress = events.flatMap(({ e }) => (e.type === 'progress' ? [{ p: e.progress }] : []));
    expect(progress.map(({ p }) => p.done)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(progress.every(({ p }) => p.total === 6)).toBe(true);
    expect(progress[0].p.etaSeconds).toBeNull();
    expect(progress[progress.length - 1].p.etaSeconds).toBe(0);
    // Each step sleeps 80 ms, so the remaining time is at least remaining·80 ms (timers
    // never fire early by more than a millisecond) and, on a machine that is not starved, not
    // far above it. The runner measures the rate on the worker's clock, so a parent that
    // receives several reports at once does not distort it.
    for (const { p } of progress.slice(1, -1)) {
      const floor = (p.total - p.done) * 0.08;
      expect(p.etaSeconds).not.toBeNull();
      expect(p.etaSeconds!).toBeGreaterThan(0.9 * floor);
      expect(p.etaSeconds!).toBeLessThan(5 * floor);
    }

    const metrics = events.flatMap(({ e }) => (e.type === 'metric' ? [e] : []));
    expect(metrics.map((m) => [m.step, m.values.value, m.values.square])).toEqual([1, 2, 3, 4, 5, 6].map((s) => [s, s, s * s]));

    // The worker process has exited by the time the job is reported finished.
    expect(isAlive((final.result as { pid: number }).pid)).toBe(false);
  });

  it('gives each job the share of cores the runner passes, unless the user set NMLAB_ORT_THREADS', async () => {
    const saved = process.env.NMLAB_ORT_THREADS;
    delete process.env.NMLAB_ORT_THREADS;
    try {
      const shared = makeRunner({ threadsPerJob: () => 1.7 }).runner;
      expect((await shared.wait(shared.start({ kind: 'selftest', steps: 1, intervalMs: 0 }).id)).result).toMatchObject({ ortThreads: 1 });
      const whole = makeRunner().runner;
      expect((await whole.wait(whole.start({ kind: 'selftest', steps: 1, intervalMs: 0 }).id)).result).toMatchObject({ ortThreads: availableParallelism() });
      // The worker inherits the user's setting, and it wins over the runner's share.
      process.env.NMLAB_ORT_THREADS = '3';
      const forced = makeRunner({ threadsPerJob: () => 1 }).runner;
      expect((await forced.wait(forced.start({ kind: 'selftest', steps: 1, intervalMs: 0 }).id)).result).toMatchObject({ ortThreads: 3 });
    } finally {
      if (saved === undefined) delete process.env.NMLAB_ORT_THREADS;
      else process.env.NMLAB_ORT_THREADS = saved;
    }
  });

  it('cancels a running job and the worker process is gone', async () => {
    const { runner } = makeRunner();
    const job = runner.start({ kind: 'selftest', steps: 10_000, intervalMs: 20 });
    await nextEvent(runner, (e) => e.type === 'progress' && e.jobId === job.id && e.progress.done >= 2);
    const pid = runner.workerPid(job.id)!;
    expect(isAlive(pid)).toBe(true);
    const asked = runner.cancel(job.id);
    expect(asked.state).toBe('running');
    const final = await runner.wait(job.id);
    expect(final.state).toBe('cancelled');
    expect(final.error?.code).toBe('CANCELLED');
    // The worker stopped by itself (it honours the signal) and says where.
    expect(final.error?.message).toMatch(/cancelled at step \d+ of 10000/);
    expect(isAlive(pid)).toBe(false);
  });

  it('kills a worker that ignores cancel after the grace period', async () => {
    const { runner } = makeRunner({ entry: join(fixtures, 'stubborn.mjs'), cancelGraceMs: 300 });
    const job = runner.start({ kind: 'selftest', steps: 1, intervalMs: 0 });
    await nextEvent(runner, (e) => e.type === 'progress' && e.jobId === job.id);
    const pid = runner.workerPid(job.id)!;
    expect(isAlive(pid)).toBe(true);
    const t0 = performance.now();
    runner.cancel(job.id);
    const final = await runner.wait(job.id);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(final.state).toBe('cancelled');
    expect(final.error?.message).toContain('was killed');
    expect(isAlive(pid)).toBe(false);
  });

  it('reports a worker crash as WORKER_CRASHED and keeps running jobs', async () => {
    const { runner } = makeRunner();
    const crashing = runner.start({ kind: 'selftest', steps: 5, intervalMs: 60, crashAt: 3 });
    const crashed = await runner.wait(crashing.id);
    expect(crashed.state).toBe('failed');
    expect(crashed.error?.code).toBe('WORKER_CRASHED');
    expect(crashed.error?.message).toContain('SIGKILL');
    expect(crashed.error?.message).toContain('at 2 of 5');

    const next = runner.start({ kind: 'selftest', steps: 3, intervalMs: 10 });
    expect((await runner.wait(next.id)).state).toBe('succeeded');
  });

  it('names the exit code of a worker that exits without finishing', async () => {
    const { runner } = makeRunner({ entry: join(fixtures, 'exit3.mjs') });
    const job = runner.start({ kind: 'selftest', steps: 1, intervalMs: 0 });
    const final = await runner.wait(job.id);
    expect(final.state).toBe('failed');
    expect(final.error?.code).toBe('WORKER_CRASHED');
    expect(final.error?.message).toContain('exited with code 3');
  });

  it('queues beyond maxConcurrent and cancels a queued job at once', async () => {
    const { runner } = makeRunner({ maxConcurrent: 1 });
    const first = runner.start({ kind: 'selftest', steps: 3, intervalMs: 30 });
    const second = runner.start({ kind: 'selftest', steps: 1, intervalMs: 0 });
    const third = runner.start({ kind: 'selftest', steps: 1, intervalMs: 0 });
    expect(runner.get(second.id).state).toBe('queued');
    expect(runner.cancel(third.id).state).toBe('cancelled');
    const firstDone = await runner.wait(first.id);
    const secondDone = await runner.wait(second.id);
    expect(secondDone.state).toBe('succeeded');
    expect(Date.parse(secondDone.startedAt!)).toBeGreaterThanOrEqual(Date.parse(firstDone.endedAt!));
    expect(runner.list().map((j) => j.state)).toEqual(['succeeded', 'succeeded', 'cancelled']);
  });

  it('cancels a job whose worker is still starting, and dispose stops running jobs as cancelled', async () => {
    const { runner } = makeRunner();
    const early = runner.start({ kind: 'selftest', steps: 100, intervalMs: 50 });
    runner.cancel(early.id);
    const final = await runner.wait(early.id);
    expect(final.state).toBe('cancelled');
    expect(final.progress).toBeNull();

    const running = runner.start({ kind: 'selftest', steps: 10_000, intervalMs: 20 });
    await nextEvent(runner, (e) => e.type === 'progress' && e.jobId === running.id);
    const pid = runner.workerPid(running.id)!;
    await runner.dispose();
    expect(runner.get(running.id).state).toBe('cancelled');
    expect(isAlive(pid)).toBe(false);
    expect(() => runner.start({ kind: 'selftest', steps: 1, intervalMs: 0 })).toThrow(/shut down/);
  });

  it('answers NOT_FOUND for an unknown job', () => {
    const { runner } = makeRunner();
    expect(() => runner.get('nope')).toThrow(/no job with id "nope"/);
    expect(() => runner.cancel('nope')).toThrow(/no job with id "nope"/);
    expect(() => runner.start({ kind: 'selftest', steps: 0 })).toThrow(/invalid job spec \(steps:/);
    expect(runner.list()).toEqual([]);
  });
});
