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
 * Largest number of classes NMLab accepts (documented in docs/cli.md): ImageNet-1k and
 * CIFAR-100 fit with room to spare. The bound keeps one typo'd label (2³¹−1, 10⁶) from sizing a
 * classifier head, a count array or a K×K noise transition matrix in gigabytes.
 */
export const MAX_CLASSES = 10_000;

/**
 * Reads class labels from a `.npy` array: shape (N,) or (N, 1), integer dtype (or float with
 * integral values), each in [0, numClasses) when numClasses is given and below
 * {@link MAX_CLASSES} always. Every value is checked before it is stored as int32, so no label
 * wraps (2⁴⁰ must not become 0). Returns int32 labels.
 */
export function labelVector(arr: NpyArray, file: string, numClasses?: number): Int32Array {
  const shape = arr.shape;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new NmlabError('BAD_FILE', `${file}: labels must be a 1-D array of class indices, got shape (${shape.join(', ')})`);
  }
  const limit = Math.min(numClasses ?? MAX_CLASSES, MAX_CLASSES);
  const n = shape[0];
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const raw = arr.data[i];
    // A bigint beyond 2⁵³ may round when converted, but never below the limit: the range check stays exact.
    const v = typeof raw === 'bigint' ? Number(raw) : raw;
    if (!Number.isInteger(v)) throw new NmlabError('BAD_FILE', `${file}: label ${i} is ${v}, not an integer class index`);
    if (v < 0 || v >= limit) throw labelRangeError(file, i, typeof raw === 'bigint' ? String(raw) : String(v), numClasses);
    out[i] = v;
  }
  return out;
}

function labelRangeError(file: string, row: number, value: string, numClasses?: number): NmlabError {
  if (value.startsWith('-')) return new NmlabError('BAD_FILE', `${file}: label ${row} is ${value}; class indices must be 0, 1, 2, …`);
  if (numClasses !== undefined && numClasses <= MAX_CLASSES) {
    return new NmlabError('BAD_FILE', `${file}: label ${row} is ${value}, outside 0..${numClasses - 1} for ${numClasses} classes; pass the right --num-classes or fix the labels`);
  }
  return new NmlabError('BAD_FILE', `${file}: label ${row} is ${value}; NMLab supports at most ${MAX_CLASSES} classes (indices 0..${MAX_CLASSES - 1}); fix the labels`);
}

/** Labels must be ≥ 0 and, when numClasses is given, < numClasses. */
export function checkLabelRange(labels: ArrayLike<number>, file: string, numClasses?: number): void {
  const limit = Math.min(numClasses ?? MAX_CLASSES, MAX_CLASSES);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v < 0 || v >= limit) throw labelRangeError(file, i, String(v), numClasses);
  }
}

/**
 * The class count K a labelled file defines: max label + 1. Classes are dense indices
 * 0..K−1, so K can exceed neither the number of rows (some class would have no sample) nor
 * {@link MAX_CLASSES}; a label like 10⁶ in a 500-row file is a typo, not a class.
 */
export function classCountOf(labels: ArrayLike<number>, file: string): number {
  let max = -1;
  let at = -1;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] > max) {
      max = labels[i];
      at = i;
    }
  }
  const k = max + 1;
  if (k > labels.length) {
    throw new NmlabError(
      'BAD_FILE',
      `${file}: label ${at} is ${max}, which implies ${k} classes but the file has only ${labels.length} rows; class indices must be dense (0..K−1, each class with samples); fix the labels`,
    );
  }
  checkLabelRange(labels, file);
  return k;
}

/**
 * A warning (or null) for test labels of classes the training labels never use: a model cannot
 * predict them, so accuracy on those rows is 0 by construction.
 */
export function unseenClassWarning(train: ArrayLike<number>, test: ArrayLike<number>, trainFile: string, testFile: string): string | null {
  const seen = new Set<number>();
  for (let i = 0; i < train.length; i++) seen.add(train[i]);
  const unseen = new Map<number, number>();
  for (let i = 0; i < test.length; i++) if (!seen.has(test[i])) unseen.set(test[i], (unseen.get(test[i]) ?? 0) + 1);
  if (unseen.size === 0) return null;
  const rows = [...unseen.values()].reduce((a, b) => a + b, 0);
  const list = [...unseen.keys()].sort((a, b) => a - b);
  const shown = list.slice(0, 10).join(', ') + (list.length > 10 ? `, … (${list.length} classes)` : '');
  return `${testFile}: ${rows} test row(s) have class(es) ${shown} that never occur in ${trainFile}; no model trained on it can predict them`;
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
