/**
 * The ETA of a study is the queue's list schedule simulated (src/core/experiments/eta.ts):
 * synthetic graphs with answers worked out by hand, stage costs from measurements before
 * priors, and the queue's summary — what `nmlab run` prints — computed by it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRIOR_SECONDS, measuredSamples, scheduleJobs, stageCosts, type EtaJob } from '../../src/core/experiments/eta';
import { ExperimentService, type QueueRunner } from '../../src/core/experiments/service';
import { progressPrinter } from '../../src/cli/commands/run';
import type { JobEvent, JobInfo, JobSpecInput } from '../../src/shared/contract/jobs';
import { makeFeatureProject } from '../integration/experiments-project';

/** A job of `seconds`, pending unless told otherwise, priority 0, in the order given. */
function job(key: string, seconds: number, deps: string[] = [], more: Partial<EtaJob> = {}): EtaJob {
  return { key, seconds, deps, state: 'pending', priority: 0, order: 0, ...more };
}
function ordered(jobs: EtaJob[]): EtaJob[] {
  return jobs.map((j, i) => ({ ...j, order: i }));
}

describe('scheduleJobs', () => {
  it('a chain takes the sum of its jobs whatever the slots (the old ETA divided it by them: 12 / 2 = 6)', () => {
    const chain = ordered([job('a', 3), job('b', 4, ['a']), job('c', 5, ['b'])]);
    for (const concurrency of [1, 2, 4]) expect(scheduleJobs(chain, { concurrency }).makespan).toBe(12);
    expect([...scheduleJobs(chain, { concurrency: 2 }).finish]).toEqual([['a', 3], ['b', 7], ['c', 12]]);
  });

  it('a fan-out: r (2 s) → x, y, z (5 s each) → g (1 s) is 2 + 15 + 1 on one slot, 2 + 5 + 5 + 1 on two, 2 + 5 + 1 on three', () => {
    const fan = ordered([job('r', 2), job('x', 5, ['r']), job('y', 5, ['r']), job('z', 5, ['r']), job('g', 1, ['x', 'y', 'z'])]);
    expect(scheduleJobs(fan, { concurrency: 1 }).makespan).toBe(18);
    const two = scheduleJobs(fan, { concurrency: 2 });
    expect(two.makespan).toBe(13);
    // x and y start together when r ends; z takes the first slot they free.
    expect(Object.fromEntries(two.finish)).toEqual({ r: 2, x: 7, y: 7, z: 12, g: 13 });
    expect(scheduleJobs(fan, { concurrency: 3 }).makespan).toBe(8);
  });

  it('a running job ends after its own estimate of what is left, else its cost less the time it has run', () => {
    const chain = (running: Partial<EtaJob>) => ordered([job('a', 3, [], { state: 'running', ...running }), job('b', 4, ['a']), job('c', 5, ['b'])]);
    expect(scheduleJobs(chain({ elapsedSeconds: 1 }), { concurrency: 2 }).makespan).toBe(2 + 4 + 5);
    expect(scheduleJobs(chain({ elapsedSeconds: 1, remainingSeconds: 0.5 }), { concurrency: 2 }).makespan).toBe(0.5 + 4 + 5);
    // Past its cost: it is taken to end now, not in negative time.
    expect(scheduleJobs(chain({ elapsedSeconds: 10 }), { concurrency: 2 }).makespan).toBe(4 + 5);
    // Succeeded dependencies are done; running jobs hold their slots: on one slot, d waits for a.
    const held = ordered([job('s', 9, [], { state: 'succeeded' }), job('a', 3, ['s'], { state: 'running', elapsedSeconds: 2 }), job('d', 4, ['s'])]);
    expect(Object.fromEntries(scheduleJobs(held, { concurrency: 1 }).finish)).toEqual({ a: 1, d: 5 });
  });

  it('a failed, cancelled or interrupted dependency blocks its dependants, which then do not count', () => {
    for (const state of ['failed', 'cancelled', 'interrupted'] as const) {
      const g = ordered([job('r', 2, [], { state }), job('x', 5, ['r']), job('y', 5, ['r']), job('z', 7), job('g', 1, ['x', 'y', 'z'])]);
      const s = scheduleJobs(g, { concurrency: 1 });
      expect(s.makespan).toBe(7); // z alone
      expect([...s.blocked].sort()).toEqual(['g', 'x', 'y']);
      expect([...s.finish.keys()]).toEqual(['z']);
    }
  });

  it('starts ready jobs highest priority first, then in order', () => {
    // One slot: p (priority 1) before q; d waits for q.
    const g = [job('q', 4, [], { order: 0 }), job('d', 6, ['q'], { order: 1 }), job('p', 4, [], { order: 2, priority: 1 })];
    expect(Object.fromEntries(scheduleJobs(g, { concurrency: 1 }).finish)).toEqual({ p: 4, q: 8, d: 14 });
    // With q first (equal priorities) d starts at 4 and p takes the slot after it: same end, other order.
    const flat = g.map((j) => ({ ...j, priority: 0 }));
    expect(Object.fromEntries(scheduleJobs(flat, { concurrency: 1 }).finish)).toEqual({ q: 4, d: 10, p: 14 });
  });

  it('nothing left is 0', () => {
    expect(scheduleJobs([job('a', 3, [], { state: 'succeeded' })], { concurrency: 2 }).makespan).toBe(0);
    expect(scheduleJobs([], { concurrency: 2 }).makespan).toBe(0);
  });
});

describe('stage costs', () => {
  it("are this study's measured means, else the project's, else the priors", () => {
    const jobs = [
      { key: 'n', stage: 'noise' as const },
      { key: 't1', stage: 'tune' as const },
      { key: 't2', stage: 'tune' as const },
      { key: 't3', stage: 'tune' as const },
    ];
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    const entries = [
      { key: 'n', state: 'succeeded' as const, startedAt: at(0), endedAt: at(3) },
      { key: 't1', state: 'succeeded' as const, startedAt: at(0), endedAt: at(10) },
      { key: 't2', state: 'succeeded' as const, startedAt: at(0), endedAt: at(20) },
      // Failed and running jobs are not measurements.
      { key: 't3', state: 'failed' as const, startedAt: at(0), endedAt: at(1) },
    ];
    const study = measuredSamples(jobs, entries);
    expect(study).toEqual([
      { stage: 'noise', seconds: 3 },
      { stage: 'tune', seconds: 10 },
      { stage: 'tune', seconds: 20 },
    ]);
    const c = stageCosts(study, [{ stage: 'tune', seconds: 100 }, { stage: 'features', seconds: 40 }, { stage: 'features', seconds: 20 }]);
    expect(c).toEqual({ ...PRIOR_SECONDS, noise: 3, tune: 15, features: 30 });
  });
});

/** A runner whose jobs run until the test says: it records starts and emits what it is told. */
class FakeRunner implements QueueRunner {
  readonly started: Array<{ id: string; spec: JobSpecInput }> = [];
  private readonly listeners = new Set<(e: JobEvent) => void>();
  private readonly ended = new Map<string, JobInfo>();
  private readonly waiters = new Map<string, Array<(j: JobInfo) => void>>();
  start(spec: JobSpecInput): JobInfo {
    const id = `fake-${this.started.length}`;
    this.started.push({ id, spec });
    return this.info(id, 'running');
  }
  cancel(id: string): JobInfo {
    this.end(id, 'cancelled');
    return this.info(id, 'cancelled');
  }
  wait(id: string): Promise<JobInfo> {
    const done = this.ended.get(id);
    return done ? Promise.resolve(done) : new Promise((resolve) => this.waiters.set(id, [...(this.waiters.get(id) ?? []), resolve]));
  }
  onEvent(cb: (e: JobEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  emit(e: JobEvent): void {
    for (const cb of this.listeners) cb(e);
  }
  end(id: string, state: 'succeeded' | 'failed' | 'cancelled'): void {
    if (this.ended.has(id)) return;
    const info = this.info(id, state);
    this.ended.set(id, info);
    this.emit({ type: 'state', job: info });
    for (const w of this.waiters.get(id) ?? []) w(info);
  }
  private info(id: string, state: JobInfo['state']): JobInfo {
    const spec = this.started.find((s) => s.id === id)!.spec as JobInfo['spec'];
    const now = new Date().toISOString();
    return { id, spec, state, createdAt: now, startedAt: now, endedAt: state === 'running' ? null : now, progress: null, error: state === 'failed' ? { name: 'NmlabError', code: 'INTERNAL', message: 'made to fail' } : null };
  }
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const roots: string[] = [];
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
});

describe('the queue’s ETA', () => {
  it('is the schedule of the study’s graph, and the `nmlab run` progress line prints it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'nmlab-eta-'));
    roots.push(root);
    const project = join(root, 'project');
    await makeFeatureProject(project, join(root, 'home'), { backbones: [{ id: 'g0', gamma: 0 }] });
    const runner = new FakeRunner();
    const service = new ExperimentService({ runner, concurrency: 2, liveIntervalMs: 5 });
    try {
      // Four LP fits (one per seed) and the aggregation that waits for all of them.
      const created = await service.create(project, {
        name: 'eta',
        backbones: [{ id: 'g0' }],
        embeddings: [{ id: 'synth', train: { features: 'features/{backbone}/synth/train.npy', labels: 'features/{backbone}/synth/train.labels.npy' } }],
        methods: [{ method: 'lp' }],
        seeds: [0, 1, 2, 3],
      });
      const id = created.summary.id;
      expect(created.jobs.map((j) => j.stage)).toEqual(['tune', 'tune', 'tune', 'tune', 'aggregate']);
      // Before it starts, the builder's estimate at priors: two fits at a time, twice, then the aggregation.
      const plan = await service.plan(project, created.spec);
      expect(plan.etaSeconds).toBe(2 * PRIOR_SECONDS.tune + PRIOR_SECONDS.aggregate);

      await service.start(project, id);
      await until(() => runner.started.length === 2, 'two jobs to start');
      // Each running fit says 5 s are left: 5, then the other two fits (8 s, the prior), then the aggregation (2 s).
      for (const s of runner.started) runner.emit({ type: 'progress', jobId: s.id, progress: { done: 1, total: 2, etaSeconds: 5 } });
      let d = await service.get(project, id);
      expect(d.summary.counts).toMatchObject({ running: 2, pending: 3 });
      const expected = 5 + PRIOR_SECONDS.tune + PRIOR_SECONDS.aggregate;
      expect(d.summary.etaSeconds).toBe(expected);
      // The same number from the function on the same state (the old sum over slots said (5+5+8+8+2)/2 = 14).
      const same = scheduleJobs(
        d.jobs.map((j, i) => ({ key: j.key, seconds: PRIOR_SECONDS[j.stage], deps: j.deps, state: j.state, priority: j.priority, order: i, remainingSeconds: j.state === 'running' ? 5 : null })),
        { concurrency: 2 },
      );
      expect(same.makespan).toBe(expected);
      const lines: string[] = [];
      progressPrinter((t) => lines.push(t))({ type: 'queue', projectDir: project, experimentId: id, summary: d.summary, jobs: d.jobs });
      expect(lines).toEqual([`${id}: 0/5 done, 2 running, 3 pending, ETA ${expected} s\n`]);

      // The first fit fails: the aggregation cannot run and no longer counts; the third fit starts.
      runner.end(runner.started[0].id, 'failed');
      await until(() => runner.started.length === 3, 'the third fit to start');
      d = await service.get(project, id);
      expect(d.summary.counts).toMatchObject({ failed: 1, running: 2, pending: 1, cancelled: 1 });
      // Fit 2 ends in 5 s, fit 3 just started (8 s); fit 4 takes the slot fit 2 frees: 5 + 8.
      expect(d.summary.etaSeconds).toBeCloseTo(5 + PRIOR_SECONDS.tune, 6);
    } finally {
      await service.dispose();
    }
  });
});
