/** The demo's seed rows as comparison observations (src/core/reports/demo.ts → compareResult). */
import { describe, expect, it } from 'vitest';
import { compareResult } from '../../src/core/experiments/compare';
import { demoObservations } from '../../src/core/reports/demo';
import type { DemoBackbone, DemoSeedRow } from '../../src/core/demo/results';

const backbone = (gamma: number): DemoBackbone => ({
  gamma,
  id: `g${gamma * 100}`,
  dir: 'x',
  sha256: 'x',
  noisyDataset: 'x',
  flippedCount: 0,
  trainCount: 1,
  pretrainTestAccuracy: null,
  trainAccuracyClean: 1,
  trainAccuracyNoisy: 1,
  epochs: 1,
  seconds: 1,
});

function row(gamma: number, seed: number, domain: string, accuracy: number, featLsvr = 1): DemoSeedRow {
  const kind = domain === 'id' ? 'id' : 'ood';
  return { gamma, method: 'lp', domain, kind, rows: 10, accuracy, macroF1: accuracy, featSve: 2 + gamma, featLsvr, zSve: 2, zLsvr: 1, featSveRaw: 2, featLsvrRaw: 1, zSveRaw: 2, zLsvrRaw: 1, seed };
}

describe('demoObservations', () => {
  // OOD accuracy per seed: mean over the two domains. γ = 0: 0.5, 0.6; γ = 0.1: 0.4, 0.3.
  const seedRows = [
    row(0, 0, 'id', 0.8),
    row(0, 0, 'blur', 0.6),
    row(0, 0, 'noise', 0.4),
    row(0, 1, 'id', 0.82),
    row(0, 1, 'blur', 0.7),
    row(0, 1, 'noise', 0.5),
    row(0.1, 0, 'id', 0.79, 3),
    row(0.1, 0, 'blur', 0.5, 3),
    row(0.1, 0, 'noise', 0.3, 3),
    row(0.1, 1, 'id', 0.83, 3),
    row(0.1, 1, 'blur', 0.4, 3),
    row(0.1, 1, 'noise', 0.2, 3),
  ];
  const obs = demoObservations({ backbones: [backbone(0), backbone(0.1)], seedRows });
  const c = compareResult({ experimentId: 'demo', name: 'demo', preset: 'noise-study' }, obs, obs.length, obs.length);

  it('an ID and an OOD cell per γ, OOD accuracy the mean over domains, per-domain columns kept', () => {
    expect(c.rows.map((r) => `${r.backbone}/${r.task}`)).toEqual(['g0/id', 'g0/ood', 'g10/id', 'g10/ood']);
    const ood0 = c.rows[1];
    expect(ood0.oodAccuracy!.mean).toBeCloseTo(0.55, 12);
    expect(ood0.domains.blur.mean).toBeCloseTo(0.65, 12);
    expect(ood0.backboneLsvr!.mean).toBe(1);
  });

  it('the difference to γ = 0 pairs tuning seeds: t(0.975, 1) = 12.706 over two seeds', () => {
    // Seed differences of OOD accuracy: 0.4 − 0.5 = −0.1 and 0.3 − 0.6 = −0.3; mean −0.2, s = 0.1414.
    const d = c.rows[3].deltaVsClean!;
    expect(d).toMatchObject({ n: 2, over: 'seeds' });
    expect(d.mean).toBeCloseTo(-0.2, 12);
    const half = (12.706204736174705 * Math.sqrt(0.02)) / Math.sqrt(2); // t · s/√n
    expect(d.hi! - d.mean).toBeCloseTo(half, 10);
    const decline = c.claims.find((k) => k.id === 'ood-decline')!;
    expect(decline.verdict).toBe('inconclusive');
    expect(decline.value).toBeCloseTo(-0.2, 12);
  });
});
