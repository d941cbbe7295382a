/**
 * The distribution functions the intervals need: Student's t (CDF and quantile) and the
 * standard normal (CDF and quantile). Pure, no dependencies; accurate to ~1e-12, checked
 * against scipy.stats in test/unit/stats.test.ts.
 *
 * Student t's CDF is the regularised incomplete beta function, P(T ≤ t) = 1 − ½·I_x(ν/2, ½)
 * with x = ν/(ν + t²) for t ≥ 0 (Abramowitz & Stegun 26.7.1); the normal CDF is the regularised
 * incomplete gamma function, Φ(x) = ½·Q(½, x²/2) for x ≤ 0 (A&S 7.1.2, 6.5.17). Both are
 * evaluated with the series / continued fractions of Numerical Recipes §6.2 and §6.4
 * (modified Lentz). Quantiles invert the CDFs by a bracketing Newton iteration.
 */

const EPS = 1e-15;
const TINY = 1e-300;

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error < 1e-15). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (NR betacf, modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b), a, b > 0, x ∈ [0, 1]. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // The continued fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** The regularised upper incomplete gamma function Q(a, x) = Γ(a, x)/Γ(a). */
export function upperIncompleteGamma(a: number, x: number): number {
  if (x <= 0) return 1;
  const lnFront = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    // Series for P(a, x) (NR gser).
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 10000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * Math.exp(lnFront);
  }
  // Continued fraction for Q(a, x) (NR gcf, modified Lentz).
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i <= 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return Math.exp(lnFront) * h;
}

/** Standard normal CDF Φ(x). */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const tail = 0.5 * upperIncompleteGamma(0.5, (x * x) / 2);
  return x <= 0 ? tail : 1 - tail;
}

function checkDf(df: number): void {
  if (!(df > 0) || !Number.isFinite(df)) throw new RangeError(`Student t needs degrees of freedom > 0, got ${df}`);
}

/** Student t CDF P(T ≤ t) with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  checkDf(df);
  if (Number.isNaN(t)) return NaN;
  if (!Number.isFinite(t)) return t > 0 ? 1 : 0;
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Student t density, for Newton steps. */
function studentTPdf(t: number, df: number): number {
  return Math.exp(logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI) - ((df + 1) / 2) * Math.log1p((t * t) / df));
}

/**
 * Invert a continuous, increasing CDF by Newton steps kept inside a bracket (bisection when a
 * step leaves it). `start` is a first guess; the bracket grows until it holds the root.
 */
function invert(cdf: (x: number) => number, pdf: (x: number) => number, p: number, start: number): number {
  let lo = start - 1;
  let hi = start + 1;
  while (cdf(lo) > p) lo -= 2 * (hi - lo);
  while (cdf(hi) < p) hi += 2 * (hi - lo);
  let x = Math.min(Math.max(start, lo), hi);
  for (let i = 0; i < 200; i++) {
    const f = cdf(x) - p;
    if (f === 0) return x;
    if (f < 0) lo = x;
    else hi = x;
    const step = f / pdf(x);
    let next = x - step;
    if (!(next > lo && next < hi) || !Number.isFinite(next)) next = (lo + hi) / 2;
    if (Math.abs(next - x) <= 1e-14 * Math.max(1, Math.abs(x))) return next;
    x = next;
  }
  return x;
}

function checkP(p: number): void {
  if (!(p > 0 && p < 1)) throw new RangeError(`a quantile needs a probability strictly between 0 and 1, got ${p}`);
}

/** Standard normal quantile Φ⁻¹(p). */
export function normalQuantile(p: number): number {
  checkP(p);
  if (p === 0.5) return 0;
  // Symmetry keeps the iteration in the lower tail, where Φ is computed without cancellation.
  if (p > 0.5) return -normalQuantile(1 - p);
  // First guess: the tail approximation x ≈ −√(−2 ln p) (A&S 26.2.23 without its correction).
  const guess = -Math.sqrt(-2 * Math.log(p)) + 1;
  return invert(normalCdf, (x) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI), p, Math.min(guess, 0));
}

/** Student t quantile: the t with P(T ≤ t) = p for `df` degrees of freedom. */
export function studentTQuantile(p: number, df: number): number {
  checkP(p);
  checkDf(df);
  if (p === 0.5) return 0;
  if (p > 0.5) return -studentTQuantile(1 - p, df);
  const z = normalQuantile(p);
  // Cornish–Fisher first-order correction as a start (A&S 26.7.5).
  const guess = z + (z ** 3 + z) / (4 * df);
  return invert((t) => studentTCdf(t, df), (t) => studentTPdf(t, df), p, guess);
}
