import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { asymmetricNoise, pairSwapLabels, pairSwapNoise, symmetricNoise, Xoshiro128 } from '../../src/core/noise';

const prng = JSON.parse(readFileSync(new URL('../fixtures/noise/prng.json', import.meta.url), 'utf8')) as { state1234: number[]; seeds: Record<string, number[]> };

/** 1000 labels over 10 classes, 100 each, in a scrambled order. */
const labels = Int32Array.from({ length: 1000 }, (_, i) => (i * 7) % 10);

describe('xoshiro128** against an independent Python implementation', () => {
  it('raw state (1,2,3,4) gives the reference sequence', () => {
    const g = Xoshiro128.fromState(1, 2, 3, 4);
    expect(prng.state1234.map(() => g.nextUint32())).toEqual(prng.state1234);
  });
  for (const [seed, want] of Object.entries(prng.seeds)) {
    it(`seed ${seed}`, () => {
      const g = new Xoshiro128(Number(seed));
      expect(want.map(() => g.nextUint32())).toEqual(want);
    });
  }
  it('nextInt is in range and roughly uniform; nextFloat in [0,1)', () => {
    const g = new Xoshiro128(3);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[g.nextInt(7)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500); // ~5 sd
    for (let i = 0; i < 1000; i++) {
      const f = g.nextFloat();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
    }
  });
});

describe('symmetric noise', () => {
  for (const ratio of [0, 0.2, 0.4, 0.8, 1]) {
    it(`ratio ${ratio}: exact count, never own class, matrix consistent`, () => {
      const r = symmetricNoise(labels, { ratio, seed: 11 });
      expect(r.flippedIndices.length).toBe(Math.round(ratio * 1000));
      const flipped = new Set(r.flippedIndices);
      expect(flipped.size).toBe(r.flippedIndices.length);
      for (let i = 0; i < 1000; i++) {
        if (flipped.has(i)) expect(r.labels[i]).not.toBe(labels[i]);
        else expect(r.labels[i]).toBe(labels[i]);
        expect(r.labels[i]).toBeGreaterThanOrEqual(0);
        expect(r.labels[i]).toBeLessThan(10);
      }
      let offDiag = 0;
      for (let a = 0; a < 10; a++) {
        const rowSum = r.transitionCounts[a].reduce((x, y) => x + y, 0);
        expect(rowSum).toBe(100);
        expect(r.transitionMatrix[a].reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
        for (let b = 0; b < 10; b++) {
          expect(r.transitionMatrix[a][b]).toBeCloseTo(r.transitionCounts[a][b] / 100, 12);
          if (a !== b) offDiag += r.transitionCounts[a][b];
        }
      }
      expect(offDiag).toBe(Math.round(ratio * 1000));
    });
  }
  it('same seed same flips, different seed different flips', () => {
    const a = symmetricNoise(labels, { ratio: 0.3, seed: 5 });
    const b = symmetricNoise(labels, { ratio: 0.3, seed: 5 });
    const c = symmetricNoise(labels, { ratio: 0.3, seed: 6 });
    expect(Array.from(a.flippedIndices)).toEqual(Array.from(b.flippedIndices));
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(Array.from(a.flippedIndices)).not.toEqual(Array.from(c.flippedIndices));
  });
  it('targets are spread over the other classes', () => {
    const r = symmetricNoise(labels, { ratio: 1, seed: 2 });
    // Every off-diagonal cell expects 100/9 ≈ 11.1; none should be empty or far off.
    for (let a = 0; a < 10; a++) for (let b = 0; b < 10; b++) if (a !== b) expect(r.transitionCounts[a][b]).toBeGreaterThan(0);
    const cells = r.transitionCounts.flatMap((row, a) => row.filter((_, b) => a !== b));
    const chi2 = cells.reduce((s, o) => s + (o - 100 / 9) ** 2 / (100 / 9), 0);
    expect(chi2).toBeLessThan(140); // 90 dof: p ≈ 0.0006 above this
  });
  it('rounds γN half up and checks its inputs', () => {
    expect(symmetricNoise([0, 1, 0, 1, 0], { ratio: 0.5, seed: 1 }).flippedIndices.length).toBe(3);
    expect(() => symmetricNoise([0, 0, 0], { ratio: 0.5, seed: 1 })).toThrow(/at least 2 classes/);
    expect(() => symmetricNoise([0, 1], { ratio: 1.5, seed: 1 })).toThrow(/ratio/);
    expect(() => symmetricNoise([0, 5], { ratio: 0.5, seed: 1, numClasses: 3 })).toThrow(/outside 0\.\.2/);
  });
});

describe('asymmetric noise', () => {
  it('stays within the subset', () => {
    const r = asymmetricNoise(labels, { ratio: 0.5, seed: 3, classes: [2, 3, 7] });
    expect(r.flippedIndices.length).toBe(150); // round(0.5 · 300 eligible)
    for (const i of r.flippedIndices) {
      expect([2, 3, 7]).toContain(labels[i]);
      expect([2, 3, 7]).toContain(r.labels[i]);
      expect(r.labels[i]).not.toBe(labels[i]);
    }
    for (let i = 0; i < 1000; i++) if (![2, 3, 7].includes(labels[i])) expect(r.labels[i]).toBe(labels[i]);
    expect(r.classes).toEqual([2, 3, 7]);
  });
  it('follows a class map', () => {
    const r = asymmetricNoise(labels, { ratio: 0.4, seed: 3, map: { 0: 1, 1: 0, 5: 9 } });
    expect(r.flippedIndices.length).toBe(120);
    for (const i of r.flippedIndices) expect(r.labels[i]).toBe(({ 0: 1, 1: 0, 5: 9 } as Record<number, number>)[labels[i]]);
    expect(r.transitionCounts[5][9] + r.transitionCounts[0][1] + r.transitionCounts[1][0]).toBe(120);
  });
  it('rejects bad maps and subsets', () => {
    expect(() => asymmetricNoise(labels, { ratio: 0.4, seed: 3 })).toThrow(/--classes/);
    expect(() => asymmetricNoise(labels, { ratio: 0.4, seed: 3, classes: [4] })).toThrow(/at least 2 classes/);
    expect(() => asymmetricNoise(labels, { ratio: 0.4, seed: 3, map: { 2: 2 } })).toThrow(/to itself/);
    expect(() => asymmetricNoise(labels, { ratio: 0.4, seed: 3, classes: [1, 2], map: { 1: 2 } })).toThrow(/no target for class 2/);
    expect(() => asymmetricNoise(labels, { ratio: 0.4, seed: 3, classes: [1, 2], map: { 1: 5, 2: 1 } })).toThrow(/not among the chosen classes/);
  });
});

describe('pair swap', () => {
  it('is an involution swapping exactly 2·round(γN/2) samples', () => {
    const r = pairSwapNoise(101, { ratio: 0.3, seed: 9 });
    expect(r.pairs.length).toBe(15);
    expect(r.flippedIndices.length).toBe(30);
    const moved = new Set(r.flippedIndices);
    for (let i = 0; i < 101; i++) {
      expect(r.permutation[r.permutation[i]]).toBe(i);
      expect(r.permutation[i] !== i).toBe(moved.has(i));
    }
    expect(Array.from(pairSwapNoise(101, { ratio: 0.3, seed: 9 }).permutation)).toEqual(Array.from(r.permutation));
    expect(Array.from(pairSwapNoise(101, { ratio: 0.3, seed: 10 }).permutation)).not.toEqual(Array.from(r.permutation));
    expect(pairSwapNoise(5, { ratio: 1, seed: 1 }).pairs.length).toBe(2);
  });
  it('carries labels along and reports the transition matrix', () => {
    const r = pairSwapLabels(labels, { ratio: 0.2, seed: 4 });
    for (let i = 0; i < 1000; i++) expect(r.labels[i]).toBe(labels[r.permutation[i]]);
    expect(r.transitionCounts.flat().reduce((a, b) => a + b, 0)).toBe(1000);
  });
});

describe('nmlab noise (CLI)', () => {
  it('writes noisy labels in the input dtype and reports the transition matrix', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeNpy, readNpy } = await import('../../src/core/arrays/npy');
    const { noiseCommand } = await import('../../src/cli/commands/noise');
    const tmp = mkdtempSync(join(tmpdir(), 'nmlab-noise-'));
    const y = join(tmp, 'y.npy');
    await writeNpy(y, { dtype: 'int64', shape: [1000], data: BigInt64Array.from(labels, (v) => BigInt(v)) });
    let out = '';
    const io = { out: (t: string) => (out += t), err: () => undefined };
    const code = await noiseCommand.run({ values: { labels: y, type: 'symmetric', ratio: '0.25', seed: '7', out: join(tmp, 'y2.npy'), json: true }, positionals: [] }, io);
    expect(code).toBe(0);
    const report = JSON.parse(out) as { flipped: number; transitionMatrix: number[][]; flippedIndices: number[] };
    expect(report.flipped).toBe(250);
    expect(report.flippedIndices).toHaveLength(250);
    const noisy = await readNpy(join(tmp, 'y2.npy'));
    expect(noisy.dtype).toBe('int64');
    const direct = symmetricNoise(labels, { ratio: 0.25, seed: 7 });
    expect(Array.from(noisy.data as BigInt64Array, Number)).toEqual(Array.from(direct.labels));
    expect(report.transitionMatrix).toEqual(direct.transitionMatrix);
  });
});
