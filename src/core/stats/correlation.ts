/**
 * Pearson and Spearman correlation with 95 % intervals (Fisher z) and two-sided p-values, for
 * the paper's §5 argument across backbones (SVE(F) ↔ ID accuracy, LSVR(F) ↔ OOD accuracy).
 */
import { CONFIDENCE, type Correlation } from '../../shared/contract/compare';
import { normalQuantile, studentTCdf } from './distributions';
import { mean } from './estimate';

/** Pearson's r of paired values; NaN when either side is constant. */
function pearsonR(x: number[], y: number[]): number {
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  // Clamp: rounding can put |r| a hair above 1 for perfectly collinear data.
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Ranks 1..n, ties given their average rank (as scipy.stats.rankdata's default). */
export function ranks(xs: number[]): number[] {
  const order = xs.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(xs.length);
  for (let s = 0; s < order.length; ) {
    let e = s;
    while (e + 1 < order.length && order[e + 1].v === order[s].v) e++;
    const rank = (s + e) / 2 + 1;
    for (let k = s; k <= e; k++) out[order[k].i] = rank;
    s = e + 1;
  }
  return out;
}

/**
 * The correlation of finite pairs with its interval tanh(atanh r ± z·se): se = 1/√(n − 3) for
 * Pearson (Fisher 1921; scipy's `pearsonr(...).confidence_interval()`), and
 * se = √((1 + r²/2)/(n − 3)) for Spearman (Bonett & Wright 2000, Psychometrika 65:23).
 * The p-value is two-sided from t = r·√((n − 2)/(1 − r²)) with n − 2 degrees of freedom (exact
 * for Pearson under normality; scipy's approximation for Spearman). Null with fewer than 3
 * pairs or a constant side; no interval for n ≤ 3.
 */
export function correlation(kind: Correlation['kind'], xs: Array<number | null | undefined>, ys: Array<number | null | undefined>, level = CONFIDENCE): Correlation | null {
  if (xs.length !== ys.length) throw new RangeError(`correlation needs paired values, got ${xs.length} x and ${ys.length} y`);
  const x: number[] = [];
  const y: number[] = [];
  xs.forEach((v, i) => {
    const w = ys[i];
    if (typeof v === 'number' && Number.isFinite(v) && typeof w === 'number' && Number.isFinite(w)) {
      x.push(v);
      y.push(w);
    }
  });
  const n = x.length;
  if (n < 3) return null;
  const r = kind === 'pearson' ? pearsonR(x, y) : pearsonR(ranks(x), ranks(y));
  if (!Number.isFinite(r)) return null;
  let p: number | null;
  if (Math.abs(r) === 1) p = 0;
  else {
    const t = r * Math.sqrt((n - 2) / (1 - r * r));
    p = 2 * studentTCdf(-Math.abs(t), n - 2);
  }
  if (n <= 3 || Math.abs(r) === 1) return { kind, r, n, lo: Math.abs(r) === 1 && n > 3 ? r : null, hi: Math.abs(r) === 1 && n > 3 ? r : null, p };
  const se = kind === 'pearson' ? 1 / Math.sqrt(n - 3) : Math.sqrt((1 + (r * r) / 2) / (n - 3));
  const zq = normalQuantile((1 + level) / 2);
  const z = Math.atanh(r);
  return { kind, r, n, lo: Math.tanh(z - zq * se), hi: Math.tanh(z + zq * se), p };
}
