/**
 * Label-noise injection (paper §3 and §4: pre-training on labels corrupted at ratio γ; DESIGN
 * §4 "Label noise"). Every function is deterministic given its seed (./prng.ts) and returns what
 * was done: the flipped sample indices and the realised transition matrix, to be stored with
 * the dataset.
 *
 * - symmetric: exactly round(γ·N) samples (chosen uniformly without replacement) each get a
 *   class drawn uniformly from the C−1 classes other than their own;
 * - asymmetric: only samples whose class is in a chosen subset S are eligible; exactly
 *   round(γ·N_S) of them are flipped, each to `map[y]` when a class map is given, otherwise
 *   to a uniformly drawn other class of S (γ is the ratio among eligible samples);
 * - pair swap (paired data, e.g. image–caption): round(γ·N/2) disjoint pairs of samples are
 *   drawn and swap their captions, so 2·round(γ·N/2) samples get another sample's caption;
 *   the result is a permutation.
 *
 * Rounding: round(x) is Math.round (halves go up), so γ·N = 2.5 flips 3 samples.
 */
import { createHash } from 'node:crypto';
import { NmlabError } from '../../shared/errors';
import { PRNG_NAME, Xoshiro128, sampleWithoutReplacement } from './prng';

/** Which noise model ran. */
export type NoiseType = 'symmetric' | 'asymmetric' | 'pairswap';

/** What an injection did; JSON-serialisable apart from the typed arrays. */
export interface NoiseResult {
  type: NoiseType;
  ratio: number;
  seed: number;
  prng: string;
  numClasses: number;
  /** The noisy labels (for pair swap: the labels carried along the permutation, if given). */
  labels: Int32Array;
  /** Indices of samples whose label changed (pair swap: whose caption changed, even if to one of the same class), ascending. */
  flippedIndices: Int32Array;
  /** counts[i][j]: samples of original class i that now have class j. */
  transitionCounts: number[][];
  /** counts with each row divided by its sum (rows of absent classes stay all zero). */
  transitionMatrix: number[][];
  /** Classes that were eligible (asymmetric) — absent otherwise. */
  classes?: number[];
}

/** Options shared by the injections. */
export interface NoiseOptions {
  ratio: number;
  seed: number;
  /** Number of classes; default max(label) + 1. */
  numClasses?: number;
}

function checkCommon(labels: ArrayLike<number>, opts: NoiseOptions): number {
  if (!(opts.ratio >= 0 && opts.ratio <= 1)) throw new NmlabError('BAD_REQUEST', `noise ratio must be in [0, 1], got ${opts.ratio}`);
  if (!Number.isSafeInteger(opts.seed)) throw new NmlabError('BAD_REQUEST', `seed must be an integer, got ${opts.seed}`);
  let max = -1;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0) throw new NmlabError('BAD_REQUEST', `label ${i} is ${y}; class indices must be 0, 1, 2, …`);
    if (y > max) max = y;
  }
  const c = opts.numClasses ?? max + 1;
  if (!Number.isInteger(c) || c < 2) throw new NmlabError('BAD_REQUEST', `label noise needs at least 2 classes, got ${c}`);
  if (max >= c) throw new NmlabError('BAD_REQUEST', `label ${max} is outside 0..${c - 1} for ${c} classes`);
  return c;
}

function transitions(before: ArrayLike<number>, after: ArrayLike<number>, c: number): { counts: number[][]; matrix: number[][] } {
  const counts = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  for (let i = 0; i < before.length; i++) counts[before[i]][after[i]]++;
  const matrix = counts.map((row) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (s > 0 ? v / s : 0));
  });
  return { counts, matrix };
}

function result(type: NoiseType, opts: NoiseOptions, c: number, before: ArrayLike<number>, after: Int32Array, flipped: Int32Array, classes?: number[]): NoiseResult {
  const { counts, matrix } = transitions(before, after, c);
  return {
    type,
    ratio: opts.ratio,
    seed: opts.seed,
    prng: PRNG_NAME,
    numClasses: c,
    labels: after,
    flippedIndices: flipped,
    transitionCounts: counts,
    transitionMatrix: matrix,
    ...(classes ? { classes } : {}),
  };
}

/** Options of {@link symmetricNoise}. */
export interface SymmetricOptions extends NoiseOptions {
  /**
   * Draw each picked sample's new label from all C classes, its own included (the authors'
   * downstream-noise semantics, paper §7.4): about round(γN)·(C−1)/C labels change, and only
   * those are listed as flipped.
   */
  anyClass?: boolean;
}

/**
 * Symmetric noise: exactly round(γN) samples, each to a uniformly drawn different class (or,
 * with `anyClass`, to a uniformly drawn class that may be its own).
 */
export function symmetricNoise(labels: ArrayLike<number>, opts: SymmetricOptions): NoiseResult {
  const c = checkCommon(labels, opts);
  const n = labels.length;
  const rng = new Xoshiro128(opts.seed);
  const k = Math.round(opts.ratio * n);
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  const picked = sampleWithoutReplacement(pool, k, rng);
  const out = Int32Array.from(labels);
  for (const i of picked) {
    if (opts.anyClass) out[i] = rng.nextInt(c);
    else {
      const r = rng.nextInt(c - 1);
      out[i] = r >= labels[i] ? r + 1 : r;
    }
  }
  const flipped = opts.anyClass ? picked.filter((i) => out[i] !== labels[i]) : picked;
  return result('symmetric', opts, c, labels, out, flipped);
}

/** Options of {@link asymmetricNoise}. */
export interface AsymmetricOptions extends NoiseOptions {
  /** Eligible classes S (at least 2 without a map). Default: the map's source classes. */
  classes?: readonly number[];
  /** Class → class it is flipped to. Every eligible class needs an entry when given. */
  map?: Readonly<Record<number, number>>;
}

/** Asymmetric noise within a class subset, optionally following a class map. */
export function asymmetricNoise(labels: ArrayLike<number>, opts: AsymmetricOptions): NoiseResult {
  const c = checkCommon(labels, opts);
  const map = opts.map;
  const subset = [...new Set(opts.classes ?? (map ? Object.keys(map).map(Number) : []))].sort((a, b) => a - b);
  if (subset.length === 0) throw new NmlabError('BAD_REQUEST', 'asymmetric noise needs the classes to corrupt (--classes) or a class map (--map)');
  for (const s of subset) if (!Number.isInteger(s) || s < 0 || s >= c) throw new NmlabError('BAD_REQUEST', `class ${s} is outside 0..${c - 1}`);
  if (map) {
    for (const s of subset) {
      const t = map[s];
      if (t === undefined) throw new NmlabError('BAD_REQUEST', `class map has no target for class ${s}`);
      if (!Number.isInteger(t) || t < 0 || t >= c) throw new NmlabError('BAD_REQUEST', `class map sends ${s} to ${t}, outside 0..${c - 1}`);
      if (t === s) throw new NmlabError('BAD_REQUEST', `class map sends ${s} to itself; a flip must change the class`);
      if (opts.classes && !subset.includes(t)) throw new NmlabError('BAD_REQUEST', `class map sends ${s} to ${t}, which is not among the chosen classes (${subset.join(',')})`);
    }
  } else if (subset.length < 2) {
    throw new NmlabError('BAD_REQUEST', `asymmetric noise without a map needs at least 2 classes to flip between, got ${subset.join(',')}`);
  }
  const inSubset = new Set(subset);
  const eligible: number[] = [];
  for (let i = 0; i < labels.length; i++) if (inSubset.has(labels[i])) eligible.push(i);
  const rng = new Xoshiro128(opts.seed);
  const k = Math.round(opts.ratio * eligible.length);
  const flipped = sampleWithoutReplacement(Int32Array.from(eligible), k, rng);
  const out = Int32Array.from(labels);
  for (const i of flipped) {
    const y = labels[i];
    if (map) out[i] = map[y];
    else {
      // Uniform over S \ {y}: draw a position among |S|−1 and skip y's own position.
      const pos = subset.indexOf(y);
      const r = rng.nextInt(subset.length - 1);
      out[i] = subset[r >= pos ? r + 1 : r];
    }
  }
  return result('asymmetric', opts, c, labels, out, flipped, subset);
}

/**
 * Class-label noise as data: what a pre-training set or a derived dataset asks for. One spec,
 * one draw ({@link injectLabelNoise}), so the noise stage of a study and the pre-training it
 * feeds cannot disagree on how a type is drawn.
 */
export type LabelNoiseSpec =
  | { type: 'symmetric'; ratio: number; seed: number }
  | { type: 'asymmetric'; ratio: number; seed: number; classes?: readonly number[]; map?: Readonly<Record<number, number>> };

/** Draw `spec` on `labels` (symmetric or asymmetric, as above). */
export function injectLabelNoise(labels: ArrayLike<number>, spec: LabelNoiseSpec, numClasses?: number): NoiseResult {
  const common = { ratio: spec.ratio, seed: spec.seed, ...(numClasses !== undefined ? { numClasses } : {}) };
  if (spec.type === 'symmetric') return symmetricNoise(labels, common);
  return asymmetricNoise(labels, { ...common, ...(spec.classes ? { classes: spec.classes } : {}), ...(spec.map ? { map: spec.map } : {}) });
}

/**
 * An identifier of a label set: the sha256 of the labels as little-endian int32, in row order.
 * Recorded by the noise stage and by pre-training, so a backbone names the exact labels it
 * was trained on.
 */
export function labelsSha256(labels: ArrayLike<number>): string {
  const a = Int32Array.from(labels);
  const bytes = new Uint8Array(a.length * 4);
  const view = new DataView(bytes.buffer);
  a.forEach((v, i) => view.setInt32(4 * i, v, true));
  return createHash('sha256').update(bytes).digest('hex');
}

/** Result of {@link pairSwapNoise}. */
export interface PairSwapResult {
  type: 'pairswap';
  ratio: number;
  seed: number;
  prng: string;
  /** Sample i now carries the caption (label) of sample permutation[i]. */
  permutation: Int32Array;
  /** The swapped pairs, each [a, b] with a < b, in drawing order. */
  pairs: [number, number][];
  flippedIndices: Int32Array;
}

/**
 * Pair swap for paired data: round(γN/2) disjoint pairs drawn uniformly; each pair swaps
 * captions. `n` is the number of pairs in the dataset.
 */
export function pairSwapNoise(n: number, opts: { ratio: number; seed: number }): PairSwapResult {
  if (!Number.isInteger(n) || n < 0) throw new NmlabError('BAD_REQUEST', `number of samples must be a non-negative integer, got ${n}`);
  if (!(opts.ratio >= 0 && opts.ratio <= 1)) throw new NmlabError('BAD_REQUEST', `noise ratio must be in [0, 1], got ${opts.ratio}`);
  const rng = new Xoshiro128(opts.seed);
  const pairsWanted = Math.min(Math.round((opts.ratio * n) / 2), Math.floor(n / 2));
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  // Partial Fisher–Yates: the first 2·pairs entries are a uniform random sequence of distinct samples.
  for (let i = 0; i < 2 * pairsWanted; i++) {
    const j = i + rng.nextInt(n - i);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  const permutation = Int32Array.from({ length: n }, (_, i) => i);
  const pairs: [number, number][] = [];
  for (let p = 0; p < pairsWanted; p++) {
    const a = pool[2 * p];
    const b = pool[2 * p + 1];
    permutation[a] = b;
    permutation[b] = a;
    pairs.push(a < b ? [a, b] : [b, a]);
  }
  const flipped = pool.slice(0, 2 * pairsWanted).sort();
  return { type: 'pairswap', ratio: opts.ratio, seed: opts.seed, prng: PRNG_NAME, permutation, pairs, flippedIndices: flipped };
}

/**
 * Applies a pair-swap permutation to class labels (e.g. to see which swaps changed a class)
 * and returns the same record as the label noises, transition matrix included.
 */
export function pairSwapLabels(labels: ArrayLike<number>, opts: NoiseOptions): NoiseResult & { permutation: Int32Array } {
  const c = checkCommon(labels, opts);
  const ps = pairSwapNoise(labels.length, opts);
  const out = Int32Array.from(ps.permutation, (j) => labels[j]);
  return { ...result('pairswap', opts, c, labels, out, ps.flippedIndices), permutation: ps.permutation };
}
