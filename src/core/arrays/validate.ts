/**
 * Checks that turn arrays read from disk into what the engine needs: a finite 2-D feature
 * matrix, a vector of integer class labels in range, and matching counts (DESIGN §7: bad input
 * gets a message naming the file and the problem, never a crash or a silent NaN).
 */
import { NmlabError } from '../../shared/errors';
import type { NpyArray } from './npy';

/** A finite M×D feature matrix, row-major. */
export interface FeatureMatrix {
  m: number;
  d: number;
  data: Float32Array | Float64Array;
}

/**
 * Views a `.npy` array as an M×D feature matrix. Float data is kept as is (no copy); integer
 * data is converted to float64. Rejects other ranks and non-finite values.
 */
export function featureMatrix(arr: NpyArray, file: string): FeatureMatrix {
  if (arr.shape.length !== 2) throw new NmlabError('BAD_FILE', `${file}: features must be a 2-D array (samples × dims), got shape (${arr.shape.join(', ')})`);
  const [m, d] = arr.shape;
  let data: Float32Array | Float64Array;
  if (arr.data instanceof Float32Array || arr.data instanceof Float64Array) data = arr.data;
  else if (arr.data instanceof BigInt64Array) data = Float64Array.from(arr.data, (v) => Number(v));
  else data = Float64Array.from(arr.data);
  checkFinite(data, d, file);
  return { m, d, data };
}

/** Throws NUMERIC naming the file, row and column of the first NaN or ±Inf. */
export function checkFinite(data: ArrayLike<number>, cols: number, file: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is NaN exactly when v is NaN or ±Inf; cheaper than Number.isFinite in hot loops.
    if (v - v !== 0) {
      const row = Math.floor(i / cols);
      throw new NmlabError('NUMERIC', `${file}: non-finite value ${v} at row ${row}, column ${i - row * cols} (0-based); clean or drop such samples before use`);
    }
  }
}

/**
 * Reads class labels from a `.npy` array: shape (N,) or (N, 1), integer dtype (or float with
 * integral values), each in [0, numClasses) when numClasses is given. Returns int32 labels.
 */
export function labelVector(arr: NpyArray, file: string, numClasses?: number): Int32Array {
  const shape = arr.shape;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new NmlabError('BAD_FILE', `${file}: labels must be a 1-D array of class indices, got shape (${shape.join(', ')})`);
  }
  const n = shape[0];
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const raw = arr.data[i];
    const v = typeof raw === 'bigint' ? Number(raw) : raw;
    if (!Number.isInteger(v)) throw new NmlabError('BAD_FILE', `${file}: label ${i} is ${v}, not an integer class index`);
    out[i] = v;
  }
  checkLabelRange(out, file, numClasses);
  return out;
}

/** Labels must be ≥ 0 and, when numClasses is given, < numClasses. */
export function checkLabelRange(labels: ArrayLike<number>, file: string, numClasses?: number): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v < 0 || v > 0x7fffffff) throw new NmlabError('BAD_FILE', `${file}: label ${i} is ${v}; class indices must be 0, 1, 2, …`);
    if (numClasses !== undefined && v >= numClasses) {
      throw new NmlabError('BAD_FILE', `${file}: label ${i} is ${v}, outside 0..${numClasses - 1} for ${numClasses} classes; pass the right --num-classes or fix the labels`);
    }
  }
}

/** Features and labels must describe the same samples. */
export function checkSameCount(featuresFile: string, m: number, labelsFile: string, n: number): void {
  if (m !== n) throw new NmlabError('BAD_FILE', `${featuresFile} has ${m} samples but ${labelsFile} has ${n} labels; they must come from the same split`);
}

/** Number of classes implied by the labels: max + 1 (0 for no labels). */
export function inferNumClasses(labels: ArrayLike<number>): number {
  let max = -1;
  for (let i = 0; i < labels.length; i++) if (labels[i] > max) max = labels[i];
  return max + 1;
}
