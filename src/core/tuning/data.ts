/**
 * Feature sets for tuning, stratified data fractions and seeded mini-batches
 * (DESIGN §4: data fractions 10–100 %, stratified per class).
 */
import { NmlabError } from '../../shared/errors';
import type { Rng } from './rng';

/** M samples of D-dimensional features (row-major float32) with integer labels 0..C−1. */
export interface FeatureSet {
  features: Float32Array;
  labels: Int32Array;
  /** M */
  rows: number;
  /** D */
  dim: number;
  /** Where the data came from, for error messages (e.g. a file name). */
  name?: string;
  /** Where the labels came from, when that is another file. */
  labelsName?: string;
}

/** Check shapes, finiteness and labels; returns the number of classes seen (max label + 1). */
export function checkFeatureSet(set: FeatureSet, what = set.name ?? 'feature set'): number {
  if (set.rows < 1 || set.dim < 1) throw new NmlabError('BAD_REQUEST', `${what}: needs at least one row and one column, got ${set.rows}×${set.dim}`);
  if (set.features.length !== set.rows * set.dim)
    throw new NmlabError('BAD_REQUEST', `${what}: ${set.features.length} values do not make ${set.rows}×${set.dim}`);
  if (set.labels.length !== set.rows)
    throw new NmlabError('BAD_REQUEST', `${what}: ${set.labels.length} labels for ${set.rows} feature rows; the label file must have one label per row`);
  for (let i = 0; i < set.features.length; i++) {
    if (!Number.isFinite(set.features[i]))
      throw new NmlabError('NUMERIC', `${what}: feature row ${Math.floor(i / set.dim)}, column ${i % set.dim} is ${set.features[i]}; remove or impute non-finite values`);
  }
  let max = -1;
  for (let i = 0; i < set.rows; i++) {
    const y = set.labels[i];
    if (y < 0) throw new NmlabError('BAD_REQUEST', `${what}: label ${y} at row ${i} is negative; labels must be 0..C−1`);
    if (y > max) max = y;
  }
  return max + 1;
}

/**
 * Indices of a stratified subset: from each class, round(fraction · n_c) samples (at least
 * one when the class is present), drawn without replacement with `rng`. Returned sorted, so
 * the subset does not depend on anything but the seed and the labels.
 */
export function stratifiedFraction(labels: Int32Array, fraction: number, rng: Rng): Int32Array {
  if (!(fraction > 0 && fraction <= 1)) throw new NmlabError('BAD_REQUEST', `data fraction must be in (0, 1], got ${fraction}`);
  if (fraction === 1) return Int32Array.from(labels, (_, i) => i);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byClass.get(labels[i]);
    if (list) list.push(i);
    else byClass.set(labels[i], [i]);
  }
  const picked: number[] = [];
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = Int32Array.from(byClass.get(c)!);
    rng.shuffle(idx);
    const k = Math.max(1, Math.round(fraction * idx.length));
    for (let i = 0; i < k; i++) picked.push(idx[i]);
  }
  return Int32Array.from(picked.sort((a, b) => a - b));
}

/**
 * One epoch of mini-batches over `indices`, shuffled with `rng`. A final batch smaller than
 * `minBatch` is dropped (BatchNorm and the batch covariance need at least two rows).
 */
export function epochBatches(indices: Int32Array, batchSize: number, rng: Rng, minBatch = 1): Int32Array[] {
  const order = rng.shuffle(Int32Array.from(indices));
  const out: Int32Array[] = [];
  for (let s = 0; s < order.length; s += batchSize) {
    const b = order.subarray(s, Math.min(order.length, s + batchSize));
    if (b.length >= minBatch) out.push(b);
  }
  return out;
}

/** Rows `idx` of a row-major matrix. */
export function gatherRows(x: Float32Array, dim: number, idx: Int32Array): Float32Array {
  const out = new Float32Array(idx.length * dim);
  for (let i = 0; i < idx.length; i++) out.set(x.subarray(idx[i] * dim, idx[i] * dim + dim), i * dim);
  return out;
}
