/**
 * The `pretrain` job kind against a real project on disk: it reads an image dataset's train
 * split, reports monotone progress and loss/epoch series, writes backbones/<id>/ with
 * provenance (test accuracy from the dataset's test split), refuses to overwrite, and saves
 * nothing when cancelled.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectService } from '../../src/core/projects';
import { writeDataset } from '../../src/core/datasets/store';
import { run } from '../../src/core/jobs/kinds/pretrain';
import type { JobContext } from '../../src/core/jobs/kinds/types';
import { PretrainJobSpec } from '../../src/shared/contract/pretrain';
import { BackboneManifest } from '../../src/shared/contract/backbones';

let root = '';
let project = '';

function ctxFor(signal: AbortSignal): JobContext & { progressLog: number[]; metrics: Record<string, number> } {
  const progressLog: number[] = [];
  const metrics: Record<string, number> = {};
  return {
    jobId: 'test',
    signal,
    progressLog,
    metrics,
    progress: (done) => progressLog.push(done),
    metric: (name) => (metrics[name] = (metrics[name] ?? 0) + 1),
    log: () => undefined,
  };
}

beforeAll(async () => {
  process.env.NMLAB_TF_BACKEND = 'wasm';
  root = await mkdtemp(join(tmpdir(), 'nmlab-pretrain-job-'));
  project = join(root, 'proj');
  await new ProjectService({ home: join(root, 'home') }).create(project, 'pretrain job test');
  // 80 images 12×12, 4 classes (a bright band whose row depends on the class), 64 train + 16 test.
  const n = 80;
  const pixels = new Uint8Array(n * 144);
  const labels = new Int32Array(n);
  const split = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 4;
    split[i] = i >= 64 ? 1 : 0;
    for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) pixels[i * 144 + y * 12 + x] = y >= 2 * labels[i] + 1 && y < 2 * labels[i] + 3 ? 200 : (i * 7 + x * 13 + y * 5) % 60;
  }
  await writeDataset(
    project,
    'bands',
    { name: 'bands', kind: 'images', source: { type: 'idx', images: 'synthetic', labels: 'synthetic' }, classes: ['a', 'b', 'c', 'd'], domains: ['default'], image: { height: 12, width: 12, channels: 1 }, split: { file: 'split.npy', train: 64, test: 16, method: 'given' } },
    { labels, images: { count: n, height: 12, width: 12, channels: 1, pixels }, split },
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const base = { kind: 'pretrain', dataset: 'bands', noise: { ratio: 0.25 }, seed: 4, hyper: { epochs: 3, batchSize: 16, lr: 0.01, warmupEpochs: 0 }, arch: { stemWidth: 4, stemStride: 1, widths: [4, 8], blocks: [1, 1] } } as const;

describe('pretrain job kind', () => {
  it('trains on the train split and writes backbones/<id>/ with provenance', async () => {
    const spec = PretrainJobSpec.parse({ ...base, projectDir: project });
    const ctx = ctxFor(new AbortController().signal);
    const result = (await run(spec, ctx)) as Record<string, unknown>;
    expect(result.id).toBe('nmlab-cnn.g25');
    expect(result.backbone).toBe(join('backbones', 'nmlab-cnn.g25'));
    expect(result.flippedCount).toBe(16); // round(0.25 · 64)
    expect(result.epochs).toBe(3);
    expect(typeof result.testAcc).toBe('number');
    // 4 steps per epoch × 3 epochs; progress never goes back.
    expect(ctx.progressLog[ctx.progressLog.length - 1]).toBe(12);
    expect(ctx.progressLog.every((v, i) => i === 0 || v >= ctx.progressLog[i - 1])).toBe(true);
    expect(ctx.metrics.epoch).toBe(3);
    expect(ctx.metrics.loss).toBeGreaterThan(0);
    const dir = join(project, 'backbones', 'nmlab-cnn.g25');
    const manifest = BackboneManifest.parse(JSON.parse(await readFile(join(dir, 'backbone.json'), 'utf8')));
    const prov = manifest.provenance as Record<string, unknown>;
    expect(manifest.provenance?.noise).toEqual({ type: 'symmetric', ratio: 0.25, seed: 4 });
    expect(prov.trainCount).toBe(64);
    expect(prov.testCount).toBe(16);
    const t = prov.transitionMatrix as number[][];
    expect(t).toHaveLength(4);
    for (const row of t) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    await stat(join(dir, 'model.onnx'));
    await stat(join(dir, 'weights.bin'));
  });

  it('refuses to overwrite an existing backbone unless forced', async () => {
    const spec = PretrainJobSpec.parse({ ...base, projectDir: project });
    await expect(run(spec, ctxFor(new AbortController().signal))).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
  });

  it('saves nothing when cancelled', async () => {
    const spec = PretrainJobSpec.parse({ ...base, projectDir: project, id: 'nmlab-cnn.cancelled', hyper: { ...base.hyper, epochs: 50 } });
    const ctl = new AbortController();
    const ctx = ctxFor(ctl.signal);
    const origin = ctx.progress;
    ctx.progress = (done, total, message) => {
      origin(done, total, message);
      if (done >= 2) ctl.abort();
    };
    await expect(run(spec, ctx)).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(stat(join(project, 'backbones', 'nmlab-cnn.cancelled', 'backbone.json'))).rejects.toThrow();
  });
});
