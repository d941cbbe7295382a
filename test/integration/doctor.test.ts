import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDirectClient, createLabBackend, type LabBackend } from '../../src/core/backend';
import { EnvironmentReport } from '../../src/shared/contract/environment';
import type { JobEvent } from '../../src/shared/contract/jobs';

const root = join(__dirname, '..', '..');
let home: string;
let backend: LabBackend;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'nmlab-doctor-'));
  backend = createLabBackend({ home });
});
afterAll(async () => {
  await backend.dispose();
  await rm(home, { recursive: true, force: true });
});

describe('doctor job through the lab backend', () => {
  it('runs in a worker, returns a valid EnvironmentReport with a measured matmul rate, and becomes env.lastReport', async () => {
    const api = createDirectClient(backend);
    expect(await api.env.lastReport({})).toBeNull();

    const seen: JobEvent[] = [];
    const stop = backend.onEvent('job', (e) => seen.push(e));
    const started = await api.jobs.start({ spec: { kind: 'doctor', matmulSize: 64 } });
    expect(started.spec).toEqual({ kind: 'doctor', matmulSize: 64 });
    const final = await backend.jobs.wait(started.id);
    stop();
    expect(final.error).toBeNull();
    expect(final.state).toBe('succeeded');

    const report = EnvironmentReport.parse(final.result);
    // The backend that timed the matmul is the one reported as chosen, and it loaded.
    expect(report.matmul.backend).toBe(report.tfjs.chosen);
    expect(report.tfjs.backends.find((b) => b.name === report.tfjs.chosen)?.loaded).toBe(true);
    expect(report.tfjs.backends.map((b) => b.name).sort()).toEqual(['cpu', 'tensorflow', 'tensorflow-gpu', 'wasm']);

    // GFLOP/s recomputed from the reported count and time: 2·n³ flops per repetition.
    const m = report.matmul;
    expect(m.size).toBe(64);
    expect(m.repetitions).toBeGreaterThanOrEqual(3);
    expect(m.gflops).toBeGreaterThan(0);
    expect(m.gflops).toBeCloseTo((m.repetitions! * 2 * 64 ** 3) / m.seconds / 1e9, 6);
    // The product itself was right (float32 sums of 64 terms in [-1, 1]).
    expect(m.maxAbsError).toBeLessThan(1e-4);

    // onnxruntime: version from its package.json, a CPU session really ran.
    const ortPkg = JSON.parse(await readFile(join(root, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8'));
    expect(report.versions.onnxruntime).toBe(ortPkg.version);
    expect(report.onnxruntime.loaded).toBe(true);
    expect(report.onnxruntime.executionProviders.map((p) => p.name)).toContain('cpu');
    // Every NMLab candidate is probed; CPU works and has a measured MatMul rate; unavailable
    // ones say why and have none; the chosen one is the first that works (NMLAB_EP unset).
    const eps = report.onnxruntime.providers;
    expect(eps[eps.length - 1]).toMatchObject({ name: 'cpu', available: true });
    expect(eps[eps.length - 1].gflops).toBeGreaterThan(0);
    for (const p of eps) expect(p.available ? p.gflops! > 0 : p.gflops === null && p.detail.length > 10).toBe(true);
    expect(report.onnxruntime.chosen).toBe(eps.find((p) => p.available)?.name);
    expect(report.onnxruntime.forced).toBe(false);
    // Whether CPU training graphs get the NCHWc convolutions, with the block ORT reports.
    expect(report.onnxruntime.detail).toMatch(/training convolutions on the NCHWc kernels \(block (8|16)\)|no NCHWc kernels/);
    expect(report.versions.node).toBe(process.versions.node);

    // Progress went through the stages in order; the job's events reached the subscriber.
    const done = seen.flatMap((e) => (e.type === 'progress' && e.jobId === started.id ? [e.progress.done] : []));
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(done[done.length - 1]).toBe(4);

    expect(await api.env.lastReport({})).toEqual(report);
    expect((await api.jobs.list({})).map((j) => j.id)).toContain(started.id);
  });

  it('rejects an invalid doctor spec at the contract boundary', async () => {
    const api = createDirectClient(backend);
    await expect(api.jobs.start({ spec: { kind: 'doctor', matmulSize: 3 } })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(api.jobs.get({ id: 'missing' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
