/**
 * Train/test splits and stratified subsets. Stratification draws per class (DESIGN §4: data
 * fractions are stratified per class), seeded, so a split is reproducible from its record.
 */
import { NmlabError } from '../../shared/errors';
import { Rng } from '../tuning/rng';
import { stratifiedFraction } from '../tuning/data';

/**
 * A stratified train/test split: from each class round(testFraction · n_c) rows go to test.
 * Returns a uint8 vector, 0 = train, 1 = test.
 */
export function stratifiedSplit(labels: Int32Array, testFraction: number, seed: number): Uint8Array {
  if (!(testFraction > 0 && testFraction < 1)) throw new NmlabError('BAD_REQUEST', `the test fraction must be between 0 and 1 (exclusive), got ${testFraction}`);
  const test = stratifiedFraction(labels, testFraction, new Rng(seed));
  const split = new Uint8Array(labels.length);
  for (const i of test) split[i] = 1;
  return split;
}

/** Stratified subset of `rows` (indices into `labels`): a fraction of each class among those rows. */
export function stratifiedSubset(labels: Int32Array, rows: Int32Array, fraction: number, seed: number): Int32Array {
  const sub = Int32Array.from(rows, (r) => labels[r]);
  const picked = stratifiedFraction(sub, fraction, new Rng(seed));
  return Int32Array.from(picked, (i) => rows[i]);
}
