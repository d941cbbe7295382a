import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spectrumOfFile, spectrumOfMatrix, spectrumStats } from '../../src/core/spectrum';
import { readNpy, writeNpy } from '../../src/core/arrays/npy';

interface Stats {
  singularValues: number[];
  sve: number;
  lsvr: number;
  sigma1Share: number;
  effectiveRank: number;
}
const dir = new URL('../fixtures/spectrum/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
  cases: Record<string, { shape: number[]; none: Stats; reference: Stats }>;
};

/**
 * Singular values within 1e-6 relative of numpy's, relative to σ1 for values that are ~0
 * (below 1e-6·σ1); SVE, LSVR, σ1 share to 1e-9. `unresolved` adds the entropy that singular
 * values below the Gram method's resolution floor contribute (see src/core/spectrum/spectrum.ts):
 * only the nearrank_f32 fixture has such values.
 */
function expectSpectrum(got: Stats, want: Stats, unresolved = 0): void {
  expect(got.singularValues.length).toBe(want.singularValues.length);
  const s1 = want.singularValues[0];
  for (let i = 0; i < want.singularValues.length; i++) {
    const w = want.singularValues[i];
    const scale = w < 1e-6 * s1 ? s1 : w;
    expect(Math.abs(got.singularValues[i] - w)).toBeLessThanOrEqual(1e-6 * scale);
  }
  expect(Math.abs(got.sve - want.sve)).toBeLessThan(1e-9 + unresolved);
  expect(Math.abs(got.lsvr - want.lsvr)).toBeLessThan(1e-9 + unresolved);
  expect(Math.abs(got.sigma1Share - want.sigma1Share)).toBeLessThan(1e-9 + unresolved);
  expect(Math.abs(got.effectiveRank - want.effectiveRank)).toBeLessThan((1e-8 + 2 * unresolved) * want.effectiveRank);
}

/** Entropy (plus mass) carried by numpy's singular values under √((m+d)ε)·σ1. */
function unresolvedContribution(want: Stats, m: number, d: number): number {
  const total = want.singularValues.reduce((a, b) => a + b, 0);
  const floor = Math.sqrt((m + d) * 2 ** -52) * want.singularValues[0];
  let sum = 0;
  for (const s of want.singularValues) {
    const p = s / total;
    if (s <= floor && p > 0) sum += -p * Math.log(p) + p;
  }
  return sum * 1.01;
}

describe('spectrum vs numpy.linalg.svd on fixtures', () => {
  for (const [name, c] of Object.entries(expected.cases)) {
    for (const preprocess of ['none', 'reference'] as const) {
      for (const gram of ['ort', 'js'] as const) {
        it(`${name} ${c.shape.join('×')} preprocess=${preprocess} gram=${gram}`, async () => {
          const r = await spectrumOfFile(join(dir, `${name}.npy`), { preprocess, gram, chunkRows: 7 });
          expectSpectrum(r, c[preprocess], name === 'nearrank_f32' ? unresolvedContribution(c[preprocess], c.shape[0], c.shape[1]) : 0);
          expect(r.preprocess).toBe(preprocess);
          expect(r.method).toBe(gram === 'ort' ? 'gram-ort-f64' : 'gram-js-f64');
          expect(r.gram).toBe(c.shape[1] <= c.shape[0] ? 'FtF' : 'FFt');
          expect([r.m, r.d]).toEqual(c.shape);
        });
      }
    }
  }

  it('rank-deficient features: numerical rank and exact zeros', async () => {
    for (const name of ['rankdef_f64', 'nearrank_f32']) {
      const r = await spectrumOfFile(join(dir, `${name}.npy`));
      expect(r.numericalRank).toBe(5);
      expect(r.singularValues.slice(5).every((s) => s === 0)).toBe(true);
    }
    // numpy resolves nearrank_f32's float32 rounding noise; the Gram method cannot, and the
    // allowance that costs is small but real:
    const c = expected.cases.nearrank_f32.none;
    const u = unresolvedContribution(c, 30, 20);
    expect(u).toBeGreaterThan(1e-7);
    expect(u).toBeLessThan(1e-5);
  });

  it('in-memory matrix, topK, progress', async () => {
    const arr = await readNpy(join(dir, 'tall_f32.npy'));
    const fractions: number[] = [];
    const r = await spectrumOfMatrix(arr.data as Float32Array, 40, 12, 'tall', { topK: 3, onProgress: (f) => fractions.push(f) });
    expect(r.singularValues).toHaveLength(3);
    expect(r.topK).toBe(3);
    expectSpectrum({ ...r, singularValues: r.singularValues }, { ...expected.cases.tall_f32.none, singularValues: expected.cases.tall_f32.none.singularValues.slice(0, 3) });
    expect(fractions.at(-1)).toBe(1);
  });
});

describe('spectrum input validation', () => {
  it('names the file and position of a NaN, across chunks', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nmlab-spec-'));
    const file = join(tmp, 'nan.npy');
    const data = new Float32Array(20 * 4).fill(1);
    data[13 * 4 + 2] = NaN;
    await writeNpy(file, { dtype: 'float32', shape: [20, 4], data });
    await expect(spectrumOfFile(file, { chunkRows: 5 })).rejects.toThrow(/nan\.npy: non-finite value NaN at row 13, column 2/);
    await writeNpy(file, { dtype: 'float32', shape: [80], data });
    await expect(spectrumOfFile(file)).rejects.toThrow(/nan\.npy: features must be a 2-D array/);
    await expect(spectrumOfMatrix(new Float64Array(6), 2, 3, 'zeros')).rejects.toThrow(/all zeros/);
    const ac = new AbortController();
    ac.abort();
    await expect(spectrumOfFile(join(dir, 'tall_f32.npy'), { signal: ac.signal, chunkRows: 4 })).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(spectrumOfMatrix(new Float64Array(6).fill(1), 2, 3, 'x', { topK: 0 })).rejects.toThrow(/topK/);
  });
  it('reads CSV features, dropping the label column', async () => {
    const arr = await readNpy(join(dir, 'wide_f64.npy'));
    const { writeFileSync } = await import('node:fs');
    const tmp = mkdtempSync(join(tmpdir(), 'nmlab-spec-'));
    const file = join(tmp, 'f.csv');
    const rows: string[] = [];
    const x = arr.data as Float64Array;
    for (let i = 0; i < 10; i++) rows.push([...x.subarray(i * 30, i * 30 + 30)].map((v) => v.toPrecision(17)).join(',') + `,${i % 3}`);
    writeFileSync(file, rows.join('\n') + '\n');
    const r = await spectrumOfFile(file, { csvLabelColumn: -1 });
    expectSpectrum(r, expected.cases.wide_f64.none);
  });
});

describe('spectrumStats', () => {
  it('flat spectrum: SVE = log n, effective rank n; zeros contribute nothing', () => {
    const s = spectrumStats([2, 2, 2, 2, 0, 0]);
    expect(s.sve).toBeCloseTo(Math.log(4), 14);
    expect(s.effectiveRank).toBeCloseTo(4, 12);
    expect(s.lsvr).toBeCloseTo(Math.log(4), 14);
    expect(s.sigma1Share).toBe(0.25);
  });
});

describe('nmlab spectrum (CLI)', () => {
  it('prints the JSON contract', async () => {
    const { spectrumCommand } = await import('../../src/cli/commands/spectrum');
    let out = '';
    const io = { out: (t: string) => (out += t), err: () => undefined };
    const code = await spectrumCommand.run({ values: { features: join(dir, 'dup_f64.npy'), preprocess: 'reference', json: true }, positionals: [] }, io);
    expect(code).toBe(0);
    const r = JSON.parse(out) as Stats & { preprocess: string; m: number; d: number; method: string; seconds: number };
    expectSpectrum(r, expected.cases.dup_f64.reference);
    expect([r.preprocess, r.m, r.d]).toEqual(['reference', 24, 16]);
    expect(r.method).toMatch(/^gram-(ort|js)-f64$/);
    expect(r.seconds).toBeGreaterThan(0);
  });
});

describe('ORT float64 Gram accuracy', () => {
  it('matches the JS float64 Gram to ~1e-14 relative, both sides, float32 and float64 input', async () => {
    const { ortGram } = await import('../../src/core/spectrum/gram-ort');
    const { gramCols, gramRows } = await import('../../src/core/linalg/gram');
    let s = 1;
    const x = Float64Array.from({ length: 300 * 40 }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32 - 0.5;
    });
    for (const data of [x, Float32Array.from(x)]) {
      const pairs: [Float64Array, Float64Array][] = [
        [await ortGram(data, 300, 40, 'cols'), gramCols(data, 300, 40)],
        [await ortGram(data, 300, 40, 'rows'), gramRows(data, 300, 40)],
      ];
      for (const [ortG, jsG] of pairs) {
        expect(ortG.length).toBe(jsG.length);
        const scale = Math.max(...jsG.map(Math.abs));
        let err = 0;
        for (let i = 0; i < jsG.length; i++) err = Math.max(err, Math.abs(ortG[i] - jsG[i]));
        expect(err / scale).toBeLessThan(1e-13);
      }
    }
  });
});
