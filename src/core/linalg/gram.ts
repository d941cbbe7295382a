/**
 * Gram matrices in float64 (DESIGN §4: the spectrum goes through the smaller Gram matrix;
 * NMTune's SVD term needs Z·Zᵀ of each batch). Inputs may be float32 or float64; every product
 * and sum is done in float64.
 *
 * The kernels compute dot products of contiguous rows, two rows against one (WebAssembly SIMD,
 * where it runs) or in 2×4 blocks (JS: each loaded element used two or four times), and fill
 * only the upper triangle before mirroring it (half the work of a general product).
 */
import { NmlabError } from '../../shared/errors';
import { linalgWasm, type LinalgWasm } from './wasm/index';

/** A dense real matrix stored row-major. */
export type RealArray = Float32Array | Float64Array;

/**
 * `out = A·Aᵀ` (rows×rows) for the rows×cols row-major matrix A, or `out += A·Aᵀ` when
 * `accumulate` is true. Returns `out` (allocated when not given).
 */
export function gramRows(a: RealArray, rows: number, cols: number, out?: Float64Array, accumulate = false): Float64Array {
  checkShape(a, rows, cols, 'gramRows');
  const g = out ?? new Float64Array(rows * rows);
  if (g.length < rows * rows) throw new NmlabError('BAD_REQUEST', `gramRows: output needs ${rows * rows} elements, has ${g.length}`);
  const put = accumulate ? (o: number, v: number) => (g[o] += v) : (o: number, v: number) => (g[o] = v);
  const k = rowKernels(rows, cols, 1);
  if (k) {
    new Float64Array(k.memory.buffer, 0, rows * cols).set(a.subarray(0, rows * cols));
    upperRowProductsWasm(k, 0, 0, rows, cols, put);
    mirrorUpper(g, rows);
    return g;
  }
  let i = 0;
  // Two rows i, i+1 against four rows j..j+3: 6 loads feed 8 multiply-adds.
  for (; i + 1 < rows; i += 2) {
    const ri0 = i * cols;
    const ri1 = ri0 + cols;
    // Entry (i, i+1) and the diagonal pair are part of the first block (j = i); the block
    // also computes (i+1, i), which is below the diagonal and overwritten by the mirror.
    let j = i;
    for (; j + 3 < rows; j += 4) {
      const r0 = j * cols;
      const r1 = r0 + cols;
      const r2 = r1 + cols;
      const r3 = r2 + cols;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let k = 0; k < cols; k++) {
        const x0 = a[ri0 + k];
        const x1 = a[ri1 + k];
        const y0 = a[r0 + k];
        const y1 = a[r1 + k];
        const y2 = a[r2 + k];
        const y3 = a[r3 + k];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      const o0 = i * rows + j;
      const o1 = o0 + rows;
      put(o0, s00);
      put(o0 + 1, s01);
      put(o0 + 2, s02);
      put(o0 + 3, s03);
      if (j > i) put(o1, s10);
      put(o1 + 1, s11);
      put(o1 + 2, s12);
      put(o1 + 3, s13);
    }
    for (; j < rows; j++) {
      const rj = j * cols;
      let s0 = 0;
      let s1 = 0;
      for (let k = 0; k < cols; k++) {
        const y = a[rj + k];
        s0 += a[ri0 + k] * y;
        s1 += a[ri1 + k] * y;
      }
      put(i * rows + j, s0);
      if (j > i) put((i + 1) * rows + j, s1);
    }
  }
  for (; i < rows; i++) {
    const ri = i * cols;
    for (let j = i; j < rows; j++) {
      const rj = j * cols;
      let s = 0;
      for (let k = 0; k < cols; k++) s += a[ri + k] * a[rj + k];
      put(i * rows + j, s);
    }
  }
  mirrorUpper(g, rows);
  return g;
}

/**
 * Largest copy of A the WebAssembly path takes (the kernels' memory never shrinks); bigger
 * inputs use the JS loops. NMTune's 128×512 batch needs 0.5 MB.
 */
const GRAM_WASM_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The kernels, with room for `matrices` rows×cols float64 copies and a result slot, or null
 * where the JS loops run instead (small or huge inputs, no WebAssembly SIMD).
 */
function rowKernels(rows: number, cols: number, matrices: number): LinalgWasm | null {
  const bytes = 8 * (matrices * rows * cols + 2);
  if (cols < 32 || rows < 8 || bytes > GRAM_WASM_MAX_BYTES) return null;
  const k = linalgWasm();
  return k && k.reserve(bytes) ? k : null;
}

/**
 * put(i·rows + j, x_i·y_j) for j ≥ i by the f64x2 kernel (kernels.ll @dot2), two rows against
 * one at a time; x and y are rows×cols row-major at byte offsets in k's memory (copied there,
 * widened to float64). JavaScript does not vectorise: the Gram of 128×512 (NMTune's batch,
 * every step) took 1.3 ms against the loops' 2.9 ms here.
 */
function upperRowProductsWasm(k: LinalgWasm, x: number, y: number, rows: number, cols: number, put: (o: number, v: number) => void): void {
  const out = new Float64Array(k.memory.buffer, Math.max(x, y) + 8 * rows * cols, 2);
  const row = (base: number, r: number): number => base + 8 * r * cols;
  for (let i = 0; i < rows; i += 2) {
    // An odd last row pairs with itself.
    const i1 = Math.min(i + 1, rows - 1);
    for (let j = i; j < rows; j++) {
      k.dot2(row(x, i), row(x, i1), row(y, j), cols, out.byteOffset);
      put(i * rows + j, out[0]);
      if (i1 !== i && j >= i1) put(i1 * rows + j, out[1]);
    }
  }
}

/**
 * `out = X·Yᵀ` (rows×rows) for row-major rows×cols X and Y whose product is known to be
 * symmetric (X = Y·D for a diagonal D, as in a projector Q·diag(w)·Qᵀ): only the upper
 * triangle is computed, then mirrored.
 */
export function symmetricRowProduct(x: Float64Array, y: Float64Array, rows: number, cols: number, out?: Float64Array): Float64Array {
  checkShape(x, rows, cols, 'symmetricRowProduct');
  checkShape(y, rows, cols, 'symmetricRowProduct');
  const g = out ?? new Float64Array(rows * rows);
  const put = (o: number, v: number): void => {
    g[o] = v;
  };
  const size = rows * cols;
  const k = rowKernels(rows, cols, 2);
  if (k) {
    new Float64Array(k.memory.buffer, 0, size).set(x.subarray(0, size));
    new Float64Array(k.memory.buffer, 8 * size, size).set(y.subarray(0, size));
    upperRowProductsWasm(k, 0, 8 * size, rows, cols, put);
  } else {
    for (let i = 0; i < rows; i++) {
      for (let j = i; j < rows; j++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += x[i * cols + c] * y[j * cols + c];
        put(i * rows + j, s);
      }
    }
  }
  mirrorUpper(g, rows);
  return g;
}

/**
 * `out = Aᵀ·A` (cols×cols) for the rows×cols row-major matrix A, or `out += Aᵀ·A` when
 * `accumulate` is true. A is transposed into float64 scratch first so the kernel reads
 * contiguous memory; pass `scratch` (≥ rows·cols) to avoid that allocation.
 */
export function gramCols(a: RealArray, rows: number, cols: number, out?: Float64Array, accumulate = false, scratch?: Float64Array): Float64Array {
  checkShape(a, rows, cols, 'gramCols');
  const t = scratch && scratch.length >= rows * cols ? scratch : new Float64Array(rows * cols);
  transposeInto(a, rows, cols, t);
  return gramRows(t, cols, rows, out, accumulate);
}

/** Writes the transpose of the rows×cols row-major `a` into `out` (cols×rows), in 32×32 tiles. */
export function transposeInto(a: RealArray, rows: number, cols: number, out: Float64Array): void {
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const ri = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = a[ri + j];
      }
    }
  }
}

/** Copies the upper triangle of the n×n matrix onto the lower one. */
export function mirrorUpper(g: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i];
  }
}

function checkShape(a: RealArray, rows: number, cols: number, what: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || a.length < rows * cols) {
    throw new NmlabError('BAD_REQUEST', `${what}: a ${rows}×${cols} matrix needs ${rows * cols} elements, got ${a.length}`);
  }
}
