import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { symmetricEigen, SymEigWorkspace } from '../../src/core/linalg/symeig';
import { gramCols, gramRows, symmetricRowProduct } from '../../src/core/linalg/gram';
import { linalgWasm } from '../../src/core/linalg/wasm/index';

interface Case {
  name: string;
  n: number;
  a: number[];
  values: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/spectrum/symeig.json', import.meta.url), 'utf8')) as {
  cases: Case[];
  gram: { rows: number; cols: number; a: number[]; aat: number[]; ata: number[] };
};

/** Uniform values in [−0.5, 0.5) from a linear congruential generator: the same every run. */
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
}

/** max |A v_i − λ_i v_i| and max |VᵀV − I|, both from the definition (independent of numpy). */
function residuals(a: Float64Array, n: number, values: Float64Array, vectors: Float64Array): { res: number; orth: number } {
  let res = 0;
  let orth = 0;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[r * n + k] * vectors[k * n + i];
      res = Math.max(res, Math.abs(s - values[i] * vectors[r * n + i]));
    }
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vectors[k * n + i] * vectors[k * n + j];
      orth = Math.max(orth, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  return { res, orth };
}

describe('symmetricEigen vs numpy.linalg.eigh', () => {
  for (const c of fixture.cases) {
    it(`${c.name} (${c.n}×${c.n})`, () => {
      const a = Float64Array.from(c.a);
      const scale = Math.max(1, ...c.values.map(Math.abs));
      for (const vectors of [false, true]) {
        const r = symmetricEigen(a, c.n, { vectors });
        expect(r.values.length).toBe(c.n);
        for (let i = 0; i < c.n; i++) expect(Math.abs(r.values[i] - c.values[i])).toBeLessThan(1e-12 * scale * c.n);
        for (let i = 1; i < c.n; i++) expect(r.values[i]).toBeLessThanOrEqual(r.values[i - 1]);
        if (vectors) {
          expect(r.vectors).toBeDefined();
          const { res, orth } = residuals(a, c.n, r.values, r.vectors!);
          expect(res).toBeLessThan(1e-12 * scale * c.n);
          expect(orth).toBeLessThan(1e-12 * c.n);
        } else {
          expect(r.vectors).toBeUndefined();
        }
      }
      expect(Array.from(a)).toEqual(c.a); // input untouched
    });
  }

  it('reuses a workspace and output buffers across sizes (128×128 Gram, as NMTune calls it)', () => {
    const ws = new SymEigWorkspace();
    const rand = lcg(7);
    for (const [n, engine] of [[128, 'auto'], [5, 'auto'], [128, 'js'], [33, 'auto']] as const) {
      const z = new Float64Array(n * 64).map(rand);
      const g = gramRows(z, n, 64);
      const outValues = new Float64Array(n);
      const outVectors = new Float64Array(n * n);
      const r = symmetricEigen(g, n, { vectors: true, workspace: ws, outValues, outVectors, engine });
      expect(r.values).toBe(outValues);
      expect(r.vectors).toBe(outVectors);
      const { res, orth } = residuals(g, n, r.values, r.vectors!);
      expect(res).toBeLessThan(1e-10);
      expect(orth).toBeLessThan(1e-10);
      // rank ≤ 64: the trailing eigenvalues vanish; the sum equals the trace.
      let trace = 0;
      for (let i = 0; i < n; i++) trace += g[i * n + i];
      expect(r.values.reduce((s, v) => s + v, 0)).toBeCloseTo(trace, 8);
      if (n > 64) expect(Math.abs(r.values[n - 1])).toBeLessThan(1e-9);
    }
  });

  it('the WebAssembly SIMD kernels load in this Node', () => {
    expect(linalgWasm()).not.toBeNull();
  });

  it('values-only (WebAssembly and JS reductions) agrees with the vectors path (reflectors kept, Q formed) on 200×200; Σλ = trace, Σλ² = ‖A‖²_F', () => {
    const rand = lcg(99);
    for (const n of [200, 201]) {
      const x = new Float64Array(n * n).map(rand);
      const a = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = x[i * n + j] + x[j * n + i];
      const fast = symmetricEigen(a, n).values; // WebAssembly SIMD reduction (n ≥ 64)
      const js = symmetricEigen(a, n, { engine: 'js' }).values; // same reduction, JS loops
      const slow = symmetricEigen(a, n, { vectors: true }).values; // QL rotating the formed Q
      let trace = 0;
      let fro = 0;
      for (let i = 0; i < n; i++) trace += a[i * n + i];
      for (let i = 0; i < n * n; i++) fro += a[i] * a[i];
      const scale = Math.abs(slow[0]) + Math.abs(slow[n - 1]);
      for (let i = 0; i < n; i++) expect(Math.abs(fast[i] - slow[i])).toBeLessThan(1e-12 * scale * n);
      for (let i = 0; i < n; i++) expect(Math.abs(js[i] - slow[i])).toBeLessThan(1e-12 * scale * n);
      expect(fast.reduce((s, v) => s + v, 0)).toBeCloseTo(trace, 9);
      expect(fast.reduce((s, v) => s + v * v, 0) / fro).toBeCloseTo(1, 12);
    }
  });

  it('rejects non-finite input and bad sizes', () => {
    expect(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 1]), 2)).toThrow(/NaN/);
    expect(() => symmetricEigen(new Float64Array(3), 2)).toThrow(/expected 2×2/);
    expect(() => symmetricEigen(new Float64Array(0), 0)).toThrow(/positive integer/);
  });
});

describe('gram helpers vs numpy', () => {
  const { rows, cols, a, aat, ata } = fixture.gram;
  it('gramRows = A·Aᵀ, gramCols = Aᵀ·A, from float64 and float32', () => {
    const g1 = gramRows(Float64Array.from(a), rows, cols);
    g1.forEach((v, i) => expect(v).toBeCloseTo(aat[i], 12));
    const g2 = gramCols(Float64Array.from(a), rows, cols);
    g2.forEach((v, i) => expect(v).toBeCloseTo(ata[i], 12));
    const g3 = gramCols(Float32Array.from(a), rows, cols);
    g3.forEach((v, i) => expect(v).toBeCloseTo(ata[i], 5));
  });
  it('accumulates over row chunks', () => {
    const full = Float64Array.from(a);
    const acc = new Float64Array(cols * cols);
    gramCols(full.subarray(0, 3 * cols), 3, cols, acc, true);
    gramCols(full.subarray(3 * cols), rows - 3, cols, acc, true);
    acc.forEach((v, i) => expect(v).toBeCloseTo(ata[i], 12));
  });
  it('the WebAssembly path (NMTune-sized batches, odd row counts, accumulation) equals the float64 definition', () => {
    const rand = lcg(5);
    for (const [m, d] of [[128, 512], [129, 300], [8, 32]] as const) {
      const x = new Float32Array(m * d).map(rand);
      const want = new Float64Array(m * m);
      for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) for (let k = 0; k < d; k++) want[i * m + j] += x[i * d + k] * x[j * d + k];
      const g = gramRows(x, m, d);
      let err = 0;
      for (let i = 0; i < m * m; i++) err = Math.max(err, Math.abs(g[i] - want[i]));
      expect(err).toBeLessThan(1e-12 * d);
      // Accumulating onto it (as the spectrum does chunk by chunk) adds a second Gram.
      gramRows(x, m, d, g, true);
      for (let i = 0; i < m * m; i++) expect(Math.abs(g[i] - 2 * want[i])).toBeLessThan(2e-12 * d);
    }
  });
  it('symmetricRowProduct: Q·diag(w)·Qᵀ from the rows of Q·diag(w) and Q, WebAssembly (128) and JS (5) paths', () => {
    const rand = lcg(11);
    for (const n of [128, 5]) {
      const q = new Float64Array(n * n).map(rand);
      const w = new Float64Array(n).map(rand);
      const qw = q.map((v, i) => v * w[i % n]);
      const p = symmetricRowProduct(qw, q, n, n);
      let err = 0;
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) {
          let want = 0;
          for (let j = 0; j < n; j++) want += q[a * n + j] * w[j] * q[b * n + j];
          err = Math.max(err, Math.abs(p[a * n + b] - want));
        }
      }
      expect(err).toBeLessThan(1e-13 * n);
    }
  });
});
