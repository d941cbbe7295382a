/** Learning-rate schedules: cosine against torch's CosineAnnealingLR, linear and warm-up by their definitions. */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { learningRateAt } from '../../src/core/tuning/schedule';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/tuning/adamw.json', import.meta.url), 'utf8')) as {
  cosine: { baseLr: number; totalSteps: number; lrs: number[] };
};

describe('learningRateAt', () => {
  it('cosine equals torch CosineAnnealingLR(T_max=total, eta_min=0)', () => {
    const { baseLr, totalSteps, lrs } = fixture.cosine;
    lrs.forEach((want, step) => expect(learningRateAt({ kind: 'cosine', baseLr, totalSteps }, step)).toBeCloseTo(want, 12));
  });

  it('linear decays from base to 0 over the steps after warm-up', () => {
    const spec = { kind: 'linear' as const, baseLr: 0.2, totalSteps: 14, warmupSteps: 4 };
    expect([0, 1, 2, 3].map((s) => learningRateAt(spec, s))).toEqual([0.05, 0.1, 0.15000000000000002, 0.2]);
    expect(learningRateAt(spec, 4)).toBeCloseTo(0.2, 12);
    expect(learningRateAt(spec, 9)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(spec, 13)).toBeCloseTo(0.02, 12);
  });

  it('cosine after warm-up starts at base and is half-way at the middle', () => {
    const spec = { kind: 'cosine' as const, baseLr: 1, totalSteps: 12, warmupSteps: 2 };
    expect(learningRateAt(spec, 0)).toBe(0.5);
    expect(learningRateAt(spec, 2)).toBe(1);
    expect(learningRateAt(spec, 7)).toBeCloseTo(0.5, 12);
  });

  it('constant stays at base', () => {
    expect(learningRateAt({ kind: 'constant', baseLr: 0.3, totalSteps: 5 }, 4)).toBe(0.3);
  });
});
