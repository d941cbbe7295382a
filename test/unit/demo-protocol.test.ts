/**
 * The demo's protocol presets and data source (src/core/demo/config.ts, data.ts): the whole
 * Fashion-MNIST when its four IDX files are present, else the embedded subset with every
 * per-class count capped at what it holds and a note saying so.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FULL_CONFIG, QUICK_CONFIG, STANDARD_CONFIG } from '../../src/core/demo/config';
import { demoDatasetIds, demoSource, fitConfigToSource } from '../../src/core/demo/data';

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nmlab-demo-protocol-'));
  for (const f of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) await writeFile(join(root, f), '');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('demoSource', () => {
  const none = join(tmpdir(), 'nmlab-no-such-dir');
  it('takes the whole Fashion-MNIST from NMLAB_FASHION_MNIST or the Debian folder when all four files are there', () => {
    expect(demoSource(undefined, { NMLAB_FASHION_MNIST: root }, none)).toEqual({ kind: 'full', dir: root });
    expect(demoSource(undefined, {}, root)).toEqual({ kind: 'full', dir: root });
  });
  it('falls back to the embedded subset, and a named data folder always wins', () => {
    expect(demoSource(undefined, { NMLAB_FASHION_MNIST: none }, none).kind).toBe('embedded');
    expect(demoSource('/some/subset', { NMLAB_FASHION_MNIST: root }, root)).toEqual({ kind: 'embedded', dir: '/some/subset' });
  });
});

describe('fitConfigToSource', () => {
  it('keeps the protocol on the whole set', () => {
    expect(fitConfigToSource(STANDARD_CONFIG, { kind: 'full', dir: root })).toEqual({ config: STANDARD_CONFIG, note: null });
  });
  it('caps per-class counts at the embedded 600 train / 100 test images and says which', () => {
    const { config, note } = fitConfigToSource(FULL_CONFIG, { kind: 'embedded', dir: root });
    expect([config.pretrainPerClass, config.pretrainTestPerClass, config.downstreamTrainPerClass, config.downstreamTestPerClass]).toEqual([600, 100, 600, 100]);
    expect(note).toContain('pretrainPerClass 1000 → 600');
    expect(note).toContain('downstreamTestPerClass 1000 → 100');
    expect(note).toContain('apt install dataset-fashion-mnist');
    // Quick fits the subset as it is: nothing to say.
    expect(fitConfigToSource(QUICK_CONFIG, { kind: 'embedded', dir: root }).note).toBeNull();
  });
  it('gives the whole set’s subsets their own ids', () => {
    const full = demoDatasetIds(STANDARD_CONFIG, 'full');
    const embedded = demoDatasetIds(STANDARD_CONFIG, 'embedded');
    expect(full.source).toBe('fashion-mnist');
    expect(embedded.source).toBe('fashion-mnist-demo');
    expect(full.pretrain).not.toBe(embedded.pretrain);
    expect(full.downstream).not.toBe(embedded.downstream);
  });
});

describe('protocol presets', () => {
  it('standard: three γ × three replicates, the whole test split, noise that bites (20 epochs, wd 5e-4)', () => {
    expect(STANDARD_CONFIG.gammas).toEqual([0, 0.1, 0.3]);
    expect(STANDARD_CONFIG.pretrainSeeds).toHaveLength(3);
    expect(STANDARD_CONFIG.downstreamTestPerClass).toBe(1000);
    expect(STANDARD_CONFIG.pretrainHyper).toMatchObject({ epochs: 20, weightDecay: 5e-4 });
    expect(FULL_CONFIG.gammas).toEqual([0, 0.05, 0.1, 0.2, 0.3]);
    expect(QUICK_CONFIG.pretrainSeeds).toEqual([0]);
  });
});

describe('summarize with pre-training replicates', () => {
  it('averages every replicate × tuning seed, not only the first replicate of each seed', async () => {
    const { summarize, DemoSeedRow } = await import('../../src/core/demo/results');
    const row = (backbone: string, seed: number, kind: 'id' | 'ood', accuracy: number) =>
      DemoSeedRow.parse({ gamma: 0, method: 'lp', domain: kind === 'id' ? 'id' : 'blur', kind, rows: 10, accuracy, macroF1: accuracy, featSve: 1, featLsvr: 1, zSve: 1, zLsvr: 1, featSveRaw: 1, featLsvrRaw: 1, zSveRaw: 1, zLsvrRaw: 1, seed, backbone });
    const rows = [row('r0', 0, 'id', 0.7), row('r1', 0, 'id', 0.8), row('r0', 1, 'id', 0.6), row('r1', 1, 'id', 0.9), row('r0', 0, 'ood', 0.5), row('r1', 0, 'ood', 0.3), row('r0', 1, 'ood', 0.4), row('r1', 1, 'ood', 0.2)];
    const [s] = summarize(rows);
    expect(s.seeds).toBe(4);
    expect(s.idAccuracy).toBeCloseTo(0.75, 12);
    expect(s.oodAccuracy).toBeCloseTo(0.35, 12);
  });
});
