/**
 * Memorisation of pre-training label noise (src/core/pretrain/memorisation.ts): the counts on
 * hand-made predictions, and a real pre-training run whose recorded shares agree with its two
 * accuracies (train accuracy on noisy minus on clean labels = (memorised − corrected) · F / N,
 * since the two label sets differ only on the F flipped samples).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memorisationOf, memorisedShare } from '../../src/core/pretrain/memorisation';
import { runPretrain } from '../../src/core/pretrain/run';
import type { ImageSet } from '../../src/core/pretrain/train';

describe('memorisationOf', () => {
  it('counts predictions equal to the noisy and to the clean label over the flipped samples only', () => {
    const clean = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]);
    const noisy = Int32Array.from([1, 1, 0, 0, 2, 2, 2, 1]); // flipped: 0, 2, 4, 6
    const flipped = Int32Array.from([0, 2, 4, 6]);
    // Sample 0 memorised, 2 corrected, 4 neither (predicts 0), 6 memorised; 1/3/5/7 are not counted.
    const pred = Int32Array.from([1, 0, 2, 1, 0, 0, 2, 0]);
    const m = memorisationOf(pred, noisy, clean, flipped);
    expect(m).toEqual({ flipped: 4, memorised: 2, corrected: 1 });
    expect(memorisedShare(m)).toBe(0.5);
  });

  it('has no share when nothing was flipped, and refuses mismatched lengths', () => {
    const l = Int32Array.from([0, 1]);
    expect(memorisedShare(memorisationOf(l, l, l, new Int32Array(0)))).toBeNull();
    expect(() => memorisationOf(Int32Array.from([0]), l, l, new Int32Array(0))).toThrow(/one prediction per training sample/);
    expect(() => memorisationOf(l, l, l, Int32Array.from([5]))).toThrow(/outside the 2 training samples/);
  });
});

describe('runPretrain records memorisation', () => {
  let root = '';
  // 96 images 12×12, 4 classes (a bright band whose row depends on the class).
  const n = 96;
  const train: ImageSet = { count: n, size: [1, 12, 12], pixels: new Uint8Array(n * 144), labels: new Int32Array(n) };
  beforeAll(async () => {
    process.env.NMLAB_TF_BACKEND = 'wasm';
    root = await mkdtemp(join(tmpdir(), 'nmlab-memorisation-'));
    for (let i = 0; i < n; i++) {
      const c = i % 4;
      train.labels[i] = c;
      for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) train.pixels[i * 144 + y * 12 + x] = y >= 2 * c + 1 && y < 2 * c + 3 ? 200 : (i * 7 + x * 13 + y * 5) % 60;
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const common = {
    train,
    numClasses: 4,
    seed: 3,
    hyper: { epochs: 4, batchSize: 16, lr: 0.01, warmupEpochs: 0 },
    arch: { stemWidth: 4, stemStride: 1 as const, widths: [4, 8], blocks: [1, 1] },
    dataset: 'bands',
  };

  it('shares over the flipped labels that agree with the two training accuracies', async () => {
    const r = await runPretrain({ ...common, noise: { type: 'symmetric', ratio: 0.25, seed: 5 }, outDir: join(root, 'g25') });
    const p = r.provenance;
    expect(p.flippedCount).toBe(24);
    expect(typeof p.memorised).toBe('number');
    expect(typeof p.corrected).toBe('number');
    const m = p.memorised!;
    const c = p.corrected!;
    expect(m + c).toBeLessThanOrEqual(1);
    // Exact counts: shares are k/24.
    expect(Math.abs(m * 24 - Math.round(m * 24))).toBeLessThan(1e-9);
    expect(p.trainAccNoisy - p.trainAccClean).toBeCloseTo(((m - c) * 24) / n, 12);
  });

  it('is null at γ = 0', async () => {
    const r = await runPretrain({ ...common, hyper: { ...common.hyper, epochs: 1 }, noise: { type: 'symmetric', ratio: 0, seed: 5 }, outDir: join(root, 'g0') });
    expect(r.provenance.flippedCount).toBe(0);
    expect(r.provenance.memorised).toBeNull();
    expect(r.provenance.corrected).toBeNull();
  });
});
