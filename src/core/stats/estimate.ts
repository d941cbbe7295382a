/**
 * Means with their 95 % Student-t confidence interval, the nested aggregation of a study
 * (tuning seeds inside pre-training replicates) and paired differences (issue 10 item 2).
 */
import { CONFIDENCE, type Estimate, type EstimateUnit } from '../../shared/contract/compare';
import { studentTQuantile } from './distributions';

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n − 1); null for fewer than two values. */
export function sampleStd(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * The mean of the finite values with its two-sided `level` interval
 * mean ± t((1 + level)/2, n − 1)·s/√n; null when there is no finite value. A single value has
 * no std and no interval.
 */
export function meanEstimate(values: Array<number | null | undefined>, over: EstimateUnit, level = CONFIDENCE): Estimate | null {
  const xs = values.filter(finite);
  if (xs.length === 0) return null;
  const m = mean(xs);
  const std = sampleStd(xs);
  if (std === null) return { mean: m, std: null, n: 1, over, lo: null, hi: null };
  const half = (studentTQuantile((1 + level) / 2, xs.length - 1) * std) / Math.sqrt(xs.length);
  return { mean: m, std, n: xs.length, over, lo: m - half, hi: m + half };
}

/** One measurement of a study: the value of one metric from one tuning seed on one replicate. */
export interface Observation {
  /** The pre-training replicate (e.g. the backbone's pre-training seed or id). */
  replicate: string;
  /** The tuning seed. */
  seed: number;
  value: number | null | undefined;
}

/** Per replicate, the mean over its tuning seeds (replicates in first-seen order; NaN-free). */
export function replicateMeans(obs: Observation[]): Map<string, number> {
  const sums = new Map<string, number[]>();
  for (const o of obs) {
    if (!finite(o.value)) continue;
    const list = sums.get(o.replicate);
    if (list) list.push(o.value);
    else sums.set(o.replicate, [o.value]);
  }
  return new Map([...sums].map(([k, v]) => [k, mean(v)]));
}

/**
 * The nested aggregate of one cell: tuning seeds are averaged within each pre-training
 * replicate, then the mean and interval are taken over replicates (n = replicates). With a
 * single replicate the interval is over the tuning seeds instead (n = seeds), and
 * `over: 'seeds'` says so: it then shows tuning noise only.
 */
export function nestedEstimate(obs: Observation[], level = CONFIDENCE): Estimate | null {
  const reps = replicateMeans(obs);
  if (reps.size >= 2) return meanEstimate([...reps.values()], 'replicates', level);
  return meanEstimate(
    obs.map((o) => o.value),
    'seeds',
    level,
  );
}

/**
 * The paired difference a − b (e.g. a cell at γ minus the same cell at γ = 0). Pairs are
 * pre-training replicates present on both sides (seed means first) when there are at least
 * two; otherwise tuning seeds present on both sides, averaged over replicates. Null when
 * nothing pairs.
 */
export function pairedDifference(a: Observation[], b: Observation[], level = CONFIDENCE): Estimate | null {
  const ra = replicateMeans(a);
  const rb = replicateMeans(b);
  const common = [...ra.keys()].filter((k) => rb.has(k));
  if (common.length >= 2) return meanEstimate(common.map((k) => ra.get(k)! - rb.get(k)!), 'replicates', level);
  const bySeed = (obs: Observation[]) => {
    const m = new Map<number, number[]>();
    for (const o of obs) if (finite(o.value)) m.set(o.seed, [...(m.get(o.seed) ?? []), o.value]);
    return new Map([...m].map(([k, v]) => [k, mean(v)]));
  };
  const sa = bySeed(a);
  const sb = bySeed(b);
  const seeds = [...sa.keys()].filter((k) => sb.has(k));
  if (seeds.length === 0) return null;
  return meanEstimate(
    seeds.map((s) => sa.get(s)! - sb.get(s)!),
    'seeds',
    level,
  );
}

/**
 * Which candidates are "best": the one with the highest mean, and only when its interval lies
 * wholly above every other candidate's (lo of the best > hi of each other). A candidate
 * without an interval (n = 1) never separates, so nothing is marked. Returns the index or null.
 */
export function separatedBest(candidates: Array<Estimate | null>): number | null {
  const present = candidates.map((e, i) => ({ e, i })).filter((x): x is { e: Estimate; i: number } => x.e !== null);
  if (present.length < 2) return null;
  const top = present.reduce((a, b) => (b.e.mean > a.e.mean ? b : a));
  if (top.e.lo === null) return null;
  for (const { e, i } of present) {
    if (i === top.i) continue;
    if (e.hi === null || !(top.e.lo > e.hi)) return null;
  }
  return top.i;
}
