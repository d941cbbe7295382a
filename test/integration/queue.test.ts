/**
 * The experiment queue: priorities decide the order, a pending job can be cancelled and
 * retried, the queue file follows every change; and the live-event throttle delivers every
 * point, in order, at most ~10 times a second per job, always including the last state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabBackend, type LabBackend } from '../../src/core/backend';
import { LiveThrottle, type LiveBatch } from '../../src/core/experiments/throttle';
import { QueueFile, type MetricPoint } from '../../src/shared/contract/experiments';
import { makeFeatureProject } from './experiments-project';
import { finalReport } from '../../src/cli/commands/run';

describe('LiveThrottle', () => {
  it('coalesces a flood into ≤ 10 batches a second per stream, losing nothing below the per-batch cap, ending with the last state', async () => {
    const batches: Array<{ at: number; key: string; batch: LiveBatch }> = [];
    const t = new LiveThrottle((key, batch) => batches.push({ at: performance.now(), key, batch }), 100);
    const start = performance.now();
    let step = 0;
    // Two streams, a point every ~1 ms for 600 ms (ten times what a worker sends).
    while (performance.now() - start < 600) {
      step++;
      for (const key of ['a', 'b']) {
        t.point(key, { series: 'loss', step, values: { total: 1 / step } });
        t.progress(key, { done: step, total: 1_000_000, etaSeconds: null });
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    t.end('a');
    t.end('b');
    for (const key of ['a', 'b']) {
      const mine = batches.filter((b) => b.key === key);
      // 600 ms at ≤ 1 batch per 100 ms, plus the first (immediate) and the final flush.
      expect(mine.length).toBeLessThanOrEqual(9);
      for (let i = 1; i < mine.length - 1; i++) expect(mine[i].at - mine[i - 1].at).toBeGreaterThanOrEqual(95);
      const steps = mine.flatMap((b) => b.batch.points.map((p: MetricPoint) => p.step));
      expect(steps).toEqual(Array.from({ length: step }, (_, i) => i + 1));
      expect(mine.at(-1)!.batch.progress!.done).toBe(step);
    }
  });

  it('thins a burst beyond the per-batch cap but keeps the newest point', () => {
    const batches: LiveBatch[] = [];
    const t = new LiveThrottle((_key, batch) => batches.push(batch), 100, 500);
    for (let step = 1; step <= 5000; step++) t.point('a', { series: 'loss', step, values: { total: step } });
    t.end('a');
    expect(batches.length).toBe(2);
    expect(batches[0].points.map((p) => p.step)).toEqual([1]);
    expect(batches[1].points.length).toBeLessThanOrEqual(500);
    expect(batches[1].points.at(-1)!.step).toBe(5000);
    const steps = batches[1].points.map((p) => p.step);
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThan(steps[i - 1]);
  });
});

describe('queue order, cancel and retry (real workers)', () => {
  let root: string;
  let project: string;
  let backend: LabBackend;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'nmlab-queue-'));
    project = join(root, 'p');
    await makeFeatureProject(project, join(root, 'home'), { backbones: [{ id: 'g0', gamma: 0 }], targets: [], trainRows: 96, testRows: 48 });
    backend = createLabBackend({ home: join(root, 'home'), experimentConcurrency: 1 });
  });
  afterAll(async () => {
    await backend?.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('runs the highest priority first, skips a cancelled pending job, and retries it on request', async () => {
    const ex = backend.experiments;
    const d = await ex.create(project, {
      name: 'order',
      backbones: [{ id: 'g0' }],
      embeddings: [
        {
          id: 'synth',
          train: { features: 'features/{backbone}/synth/train.npy', labels: 'features/{backbone}/synth/train.labels.npy' },
          test: { features: 'features/{backbone}/synth/test.npy', labels: 'features/{backbone}/synth/test.labels.npy' },
        },
      ],
      methods: [{ method: 'lp' }],
      seeds: [0, 1, 2],
      defaults: { epochs: 2, batchSize: 32 },
    });
    const [k0, k1, k2, agg] = d.jobs.map((j) => j.key);
    expect(agg).toBe('aggregate');
    await ex.setPriority(project, 'order', k2, 10);
    await ex.start(project, 'order');
    await ex.cancel(project, 'order', k1);
    await ex.waitIdle(project, 'order');
    let q = QueueFile.parse(JSON.parse(await readFile(join(project, 'experiments', 'order', 'queue.json'), 'utf8')));
    const e = Object.fromEntries(q.entries.map((x) => [x.key, x]));
    expect(e[k2].state).toBe('succeeded');
    expect(e[k0].state).toBe('succeeded');
    expect(Date.parse(e[k2].startedAt!)).toBeLessThan(Date.parse(e[k0].startedAt!));
    expect(e[k1]).toMatchObject({ state: 'cancelled', attempts: 0, runId: null });
    // The aggregation needs every fit: it is not run, and says why.
    expect(e[agg]).toMatchObject({ state: 'cancelled', attempts: 0 });
    expect(e[agg].error).toMatch(/not run: it needs ".*s1.*", which was cancelled/);

    await ex.retry(project, 'order', [k1]);
    await ex.waitIdle(project, 'order');
    q = QueueFile.parse(JSON.parse(await readFile(join(project, 'experiments', 'order', 'queue.json'), 'utf8')));
    expect(q.entries.map((x) => x.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(q.entries[1].attempts).toBe(1);
    const c = await ex.compare(project, 'order');
    expect(c.rows[0].accuracy!.n).toBe(3);
  }, 240_000);

  it('a failed job says why, and so do the jobs that needed it (what nmlab run prints)', async () => {
    const ex = backend.experiments;
    const d = await ex.create(project, {
      name: 'broken',
      backbones: [{ id: 'g0' }],
      embeddings: [{ id: 'gone', train: { features: 'features/{backbone}/nothing.npy', labels: 'features/{backbone}/nothing.labels.npy' } }],
      methods: [{ method: 'lp' }],
    });
    await ex.start(project, d.summary.id);
    await ex.waitIdle(project, d.summary.id);
    const after = await ex.get(project, d.summary.id);
    const [fit, agg] = after.jobs;
    expect(fit.state).toBe('failed');
    expect(fit.error).toMatch(/features\/g0\/nothing\.npy/);
    expect(agg).toMatchObject({ state: 'cancelled', attempts: 0 });
    expect(agg.error).toBe(`not run: it needs "${fit.key}", which failed (${fit.error})`);
    const { code, text } = finalReport(after, project);
    expect(text).toContain(`nmlab experiment retry ${after.summary.id} --project ${project}`);
    expect(code).toBe(1);
    expect(text).toContain(`failed: ${fit.key} (run ${fit.runId})`);
    expect(text).toContain(fit.error!);
    expect(text).toContain(`1 job not run: it needs "${fit.key}", which failed`);
  }, 240_000);
});
