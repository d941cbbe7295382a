/**
 * src/core/stats against scipy.stats / numpy (fixture: test/fixtures/stats/make_stats.py).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  claimVerdict,
  correlation,
  meanEstimate,
  nestedEstimate,
  normalCdf,
  normalQuantile,
  pairedDifference,
  ranks,
  separatedBest,
  studentTCdf,
  studentTQuantile,
  type Observation,
} from '../../src/core/stats';
import type { Estimate } from '../../src/shared/contract/compare';

interface Interval {
  mean: number;
  std: number;
  n: number;
  lo: number;
  hi: number;
}
interface Corr {
  r: number;
  p: number;
  lo: number;
  hi: number;
}
interface Fixture {
  tQuantile: Array<{ p: number; df: number; q: number }>;
  tCdf: Array<{ t: number; df: number; p: number }>;
  normalQuantile: Array<{ p: number; q: number }>;
  normalCdf: Array<{ x: number; p: number }>;
  meanCi: Array<Interval & { values: number[] }>;
  nested: Array<Interval & { obs: Observation[]; over: 'replicates' | 'seeds' }>;
  paired: Array<Interval & { a: Observation[]; b: Observation[]; over: 'replicates' | 'seeds' }>;
  correlation: Array<{ x: number[]; y: number[]; pearson: Corr; spearman: Corr; ranksX: number[] }>;
}

const fx = JSON.parse(readFileSync(join(__dirname, '../fixtures/stats/stats.json'), 'utf8')) as Fixture;

/** |a − b| within rel·|b| + abs. */
function close(a: number | null, b: number, rel = 1e-10, abs = 1e-12): void {
  expect(a).not.toBeNull();
  expect(Math.abs((a as number) - b)).toBeLessThanOrEqual(rel * Math.abs(b) + abs);
}

function sameInterval(e: Estimate | null, want: Interval, over: string): void {
  expect(e).not.toBeNull();
  close(e!.mean, want.mean);
  close(e!.std, want.std);
  close(e!.lo, want.lo);
  close(e!.hi, want.hi);
  expect(e!.n).toBe(want.n);
  expect(e!.over).toBe(over);
}

describe('distributions (scipy.stats)', () => {
  it('Student t quantile', () => {
    for (const { p, df, q } of fx.tQuantile) close(studentTQuantile(p, df), q, 1e-10);
    // The textbook value behind every 95 % interval with 2 replicates: t(0.975, 1) = 12.706.
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.7062, 4);
  });
  it('Student t CDF', () => {
    for (const { t, df, p } of fx.tCdf) close(studentTCdf(t, df), p, 1e-10, 1e-14);
  });
  it('normal quantile and CDF', () => {
    for (const { p, q } of fx.normalQuantile) close(normalQuantile(p), q, 1e-10, 1e-14);
    for (const { x, p } of fx.normalCdf) close(normalCdf(x), p, 1e-10, 1e-16);
  });
  it('rejects impossible arguments', () => {
    expect(() => studentTQuantile(1, 3)).toThrow(/strictly between 0 and 1/);
    expect(() => studentTQuantile(0.5, 0)).toThrow(/degrees of freedom/);
  });
});

describe('means and intervals (scipy.stats.t.interval)', () => {
  it('mean ± t·s/√n', () => {
    for (const c of fx.meanCi) sameInterval(meanEstimate(c.values, 'seeds'), c, 'seeds');
  });
  it('one value: no std, no interval; no value: null; non-finite values ignored', () => {
    expect(meanEstimate([0.5], 'replicates')).toEqual({ mean: 0.5, std: null, n: 1, over: 'replicates', lo: null, hi: null });
    expect(meanEstimate([null, undefined, NaN], 'seeds')).toBeNull();
    expect(meanEstimate([1, 3, null, Infinity], 'seeds')?.n).toBe(2);
  });
  it('nested: seeds averaged within replicates, interval over replicates (over seeds for one replicate)', () => {
    for (const c of fx.nested) sameInterval(nestedEstimate(c.obs), c, c.over);
  });
  it('paired differences by replicate (by seed for a single replicate)', () => {
    for (const c of fx.paired) sameInterval(pairedDifference(c.a, c.b), c, c.over);
    expect(pairedDifference([{ replicate: 'a', seed: 0, value: 1 }], [{ replicate: 'b', seed: 1, value: 1 }])).toBeNull();
  });
});

describe('correlations (scipy.stats.pearsonr / spearmanr)', () => {
  it('Pearson r, p and Fisher-z interval', () => {
    for (const c of fx.correlation) {
      const r = correlation('pearson', c.x, c.y)!;
      close(r.r, c.pearson.r, 1e-10);
      close(r.p, c.pearson.p, 1e-8, 1e-14);
      close(r.lo, c.pearson.lo, 1e-10);
      close(r.hi, c.pearson.hi, 1e-10);
      expect(r.n).toBe(c.x.length);
    }
  });
  it('Spearman ρ (average ranks for ties), p and Bonett–Wright interval', () => {
    for (const c of fx.correlation) {
      expect(ranks(c.x)).toEqual(c.ranksX);
      const r = correlation('spearman', c.x, c.y)!;
      close(r.r, c.spearman.r, 1e-10);
      close(r.p, c.spearman.p, 1e-8, 1e-14);
      close(r.lo, c.spearman.lo, 1e-10);
      close(r.hi, c.spearman.hi, 1e-10);
    }
  });
  it('too few pairs or a constant side gives null; non-finite pairs are dropped', () => {
    expect(correlation('pearson', [1, 2], [3, 4])).toBeNull();
    expect(correlation('pearson', [1, 1, 1, 1], [1, 2, 3, 4])).toBeNull();
    const c = fx.correlation[2];
    expect(correlation('pearson', [...c.x, NaN], [...c.y, 1])!.r).toBeCloseTo(c.pearson.r, 12);
  });
});

const est = (mean: number, lo: number | null, hi: number | null, n = 3): Estimate => ({ mean, std: lo === null ? null : 0.01, n, over: 'replicates', lo, hi });

describe('best only where intervals separate', () => {
  it('marks the top mean when its interval is above every other', () => {
    expect(separatedBest([est(0.8, 0.78, 0.82), est(0.7, 0.68, 0.72), null])).toBe(0);
  });
  it('marks nothing when intervals overlap (the issue’s 85.66 ± 0.11 over 85.51 ± 0.03, n = 2)', () => {
    const a = meanEstimate([0.8558, 0.8574], 'seeds');
    const b = meanEstimate([0.8549, 0.8553], 'seeds');
    expect(separatedBest([a, b])).toBeNull();
  });
  it('marks nothing without intervals (n = 1)', () => {
    expect(separatedBest([est(0.9, null, null, 1), est(0.1, null, null, 1)])).toBeNull();
  });
});

describe('claim verdicts', () => {
  it('supported, contradicted or inconclusive from the interval and the claimed sign', () => {
    expect(claimVerdict({ lo: 0.01, hi: 0.03 }, 1)).toBe('supported');
    expect(claimVerdict({ lo: 0.01, hi: 0.03 }, -1)).toBe('contradicted');
    expect(claimVerdict({ lo: -0.03, hi: -0.01 }, -1)).toBe('supported');
    expect(claimVerdict({ lo: -0.03, hi: -0.01 }, 1)).toBe('contradicted');
    expect(claimVerdict({ lo: -0.01, hi: 0.01 }, 1)).toBe('inconclusive');
    expect(claimVerdict({ lo: null, hi: null }, 1)).toBe('inconclusive');
    expect(claimVerdict(null, -1)).toBe('inconclusive');
  });
});
