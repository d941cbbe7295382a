/**
 * Gram matrices in float64 (DESIGN §4: the spectrum goes through the smaller Gram matrix;
 * NMTune's SVD term needs Z·Zᵀ of each batch). Inputs may be float32 or float64; every product
 * and sum is done in float64.
 *
 * The kernels compute dot products of contiguous rows, four outputs at a time so that each
 * loaded element of the left row is used four times, and fill only the upper triangle before
 * mirroring it (half the work of a general product).
 */
import { NmlabError } from '../../shared/errors';

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
  for (let i = 0; i < rows; i++) {
    const ri = i * cols;
    let j = i;
    for (; j + 3 < rows; j += 4) {
      const r0 = j * cols;
      const r1 = r0 + cols;
      const r2 = r1 + cols;
      const r3 = r2 + cols;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < cols; k++) {
        const x = a[ri + k];
        s0 += x * a[r0 + k];
        s1 += x * a[r1 + k];
        s2 += x * a[r2 + k];
        s3 += x * a[r3 + k];
      }
      const o = i * rows + j;
      if (accumulate) {
        g[o] += s0;
        g[o + 1] += s1;
        g[o + 2] += s2;
        g[o + 3] += s3;
      } else {
        g[o] = s0;
        g[o + 1] = s1;
        g[o + 2] = s2;
        g[o + 3] = s3;
      }
    }
    for (; j < rows; j++) {
      const rj = j * cols;
      let s = 0;
      for (let k = 0; k < cols; k++) s += a[ri + k] * a[rj + k];
      if (accumulate) g[i * rows + j] += s;
      else g[i * rows + j] = s;
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
