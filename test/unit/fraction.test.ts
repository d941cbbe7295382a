/** Stratified data fractions and seeded mini-batches. */
import { describe, it, expect } from 'vitest';
import { stratifiedFraction, epochBatches } from '../../src/core/tuning/data';
import { Rng } from '../../src/core/tuning/rng';

function counts(labels: Int32Array, idx: Int32Array): Map<number, number> {
  const m = new Map<number, number>();
  for (const i of idx) m.set(labels[i], (m.get(labels[i]) ?? 0) + 1);
  return m;
}

describe('stratifiedFraction', () => {
  // 3 classes of 40, 25 and 7 samples, interleaved
  const labels = Int32Array.from([...Array(40).fill(0), ...Array(25).fill(1), ...Array(7).fill(2)]);
  new Rng(9).shuffle(labels);

  it('takes round(f·n_c) of every class (at least one)', () => {
    for (const [f, want] of [
      [0.1, [4, 3, 1]],
      [0.25, [10, 6, 2]],
      [0.5, [20, 13, 4]],
      [0.75, [30, 19, 5]],
    ] as Array<[number, number[]]>) {
      const idx = stratifiedFraction(labels, f, new Rng(1));
      const c = counts(labels, idx);
      expect([c.get(0), c.get(1), c.get(2)]).toEqual(want);
      expect(new Set(idx).size).toBe(idx.length);
    }
  });

  it('is the identity at 1 and reproducible per seed', () => {
    expect(stratifiedFraction(labels, 1, new Rng(3)).length).toBe(labels.length);
    const a = stratifiedFraction(labels, 0.25, new Rng(3));
    const b = stratifiedFraction(labels, 0.25, new Rng(3));
    const c = stratifiedFraction(labels, 0.25, new Rng(4));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it('rejects fractions outside (0, 1]', () => {
    expect(() => stratifiedFraction(labels, 0, new Rng(1))).toThrow(/fraction/);
    expect(() => stratifiedFraction(labels, 1.5, new Rng(1))).toThrow(/fraction/);
  });
});

describe('epochBatches', () => {
  it('covers every index once, drops a final batch below minBatch, differs per epoch', () => {
    const idx = Int32Array.from({ length: 21 }, (_, i) => i);
    const rng = new Rng(5);
    const e1 = epochBatches(idx, 5, rng, 2);
    expect(e1.map((b) => b.length)).toEqual([5, 5, 5, 5]);
    const e2 = epochBatches(idx, 4, rng, 1);
    expect(e2.map((b) => b.length)).toEqual([4, 4, 4, 4, 4, 1]);
    const all = e2.flatMap((b) => Array.from(b)).sort((a, b) => a - b);
    expect(all).toEqual(Array.from(idx));
    expect(Array.from(e1[0])).not.toEqual(Array.from(e2[0]).slice(0, 5));
  });
});
