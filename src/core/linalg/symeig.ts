/**
 * Eigen-decomposition of a real symmetric matrix in float64: Householder reduction to
 * tridiagonal form, then the implicit QL algorithm with Wilkinson-style shifts. This is the
 * EISPACK `tred2`/`tql2` pair as written in JAMA (public domain), restructured for a flat
 * Float64Array so that every inner loop walks memory contiguously.
 *
 * Used for the spectrum (DESIGN §4: singular values through the smaller Gram matrix, values
 * only) and by NMTune's SVD term (the gradient ∂σᵢ/∂Z = uᵢvᵢᵀ needs the vectors of the
 * 128×128 batch Gram matrix every training step), so the routine is allocation-light: pass
 * a {@link SymEigWorkspace} to reuse buffers across calls.
 *
 * Storage trick: JAMA indexes its working matrix as `V[row][col]` and its hot loops run down
 * a column (`V[k][j]`, k varying). We store V column-major (`V[k][j]` at `j*n + k`), which
 * makes those loops stride-1. The input is symmetric, so copying it verbatim is the same as
 * copying it column-major.
 */
import { NmlabError } from '../../shared/errors';

/** Result of {@link symmetricEigen}. */
export interface SymEigResult {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /**
   * Eigenvectors as an n×n row-major matrix: column i (elements `k*n + i`, k = 0..n-1) is the
   * unit eigenvector of `values[i]`. Present only when `vectors: true` was asked for.
   */
  vectors?: Float64Array;
}

/** Options of {@link symmetricEigen}. */
export interface SymEigOptions {
  /** Compute eigenvectors too (about 3× the work). Default false. */
  vectors?: boolean;
  /** Reusable scratch buffers; sized on first use and grown as needed. */
  workspace?: SymEigWorkspace;
  /**
   * Where to write the results instead of allocating (lengths ≥ n and ≥ n·n). Lets a training
   * loop run without any allocation per call.
   */
  outValues?: Float64Array;
  outVectors?: Float64Array;
}

/** Scratch space for {@link symmetricEigen}; keep one per caller to avoid allocation per call. */
export class SymEigWorkspace {
  v = new Float64Array(0);
  d = new Float64Array(0);
  e = new Float64Array(0);
  order = new Int32Array(0);

  ensure(n: number): void {
    if (this.d.length < n) {
      this.d = new Float64Array(n);
      this.e = new Float64Array(n);
      this.order = new Int32Array(n);
    }
    if (this.v.length < n * n) this.v = new Float64Array(n * n);
  }
}

/**
 * Eigenvalues (descending) and optionally eigenvectors of the symmetric n×n matrix `a`
 * (row-major; only symmetry is assumed, both triangles are read as one). `a` is not modified.
 *
 * Accuracy: backward stable; eigenvalues to about n·ε·‖A‖₂ absolute, the same class as
 * LAPACK's `dsyev`.
 */
export function symmetricEigen(a: Float64Array, n: number, opts: SymEigOptions = {}): SymEigResult {
  if (!Number.isInteger(n) || n < 1) throw new NmlabError('BAD_REQUEST', `symmetricEigen: matrix size must be a positive integer, got ${n}`);
  if (a.length < n * n) throw new NmlabError('BAD_REQUEST', `symmetricEigen: expected ${n}×${n} = ${n * n} elements, got ${a.length}`);
  const wantVectors = opts.vectors === true;
  const ws = opts.workspace ?? new SymEigWorkspace();
  ws.ensure(n);
  const V = ws.v;
  const d = ws.d;
  const e = ws.e;
  for (let i = 0; i < n * n; i++) {
    const x = a[i];
    if (!Number.isFinite(x)) throw new NmlabError('NUMERIC', `symmetricEigen: matrix element ${i} (row ${Math.floor(i / n)}, column ${i % n}) is ${x}`);
    V[i] = x;
  }

  tridiagonalize(V, n, d, e, wantVectors);
  tql(V, n, d, e, wantVectors);

  // Sort descending (QL returns ascending-ish, not guaranteed) and lay vectors out row-major.
  const order = ws.order;
  for (let i = 0; i < n; i++) order[i] = i;
  const idx = Array.from(order.subarray(0, n));
  idx.sort((p, q) => d[q] - d[p]);
  const values = opts.outValues ?? new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = d[idx[i]];
  if (!wantVectors) return { values };
  const vectors = opts.outVectors ?? new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    // Column-major V: eigenvector of d[c] is V[c*n .. c*n+n).
    const src = idx[i] * n;
    for (let k = 0; k < n; k++) vectors[k * n + i] = V[src + k];
  }
  return { values, vectors };
}

/**
 * Householder reduction of the symmetric matrix in `V` (column-major) to tridiagonal form
 * (JAMA tred2). On return d holds the diagonal, e[1..n-1] the sub-diagonal (e[0] = 0) and, if
 * `accumulate`, V the orthogonal transformation (column-major: column j at V[j*n..]).
 */
function tridiagonalize(V: Float64Array, n: number, d: Float64Array, e: Float64Array, accumulate: boolean): void {
  // Row n-1 of the (symmetric) matrix; column-major element [n-1][j] is at j*n + n-1.
  for (let j = 0; j < n; j++) d[j] = V[j * n + n - 1];

  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[j * n + i - 1];
        V[j * n + i] = 0;
        V[i * n + j] = 0;
      }
    } else {
      // Generate the Householder vector (scaled to avoid under/overflow).
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;

      // e = A·u restricted to the leading i×i block, using its lower triangle
      // (column j, rows k > j: contiguous at j*n + k).
      for (let j = 0; j < i; j++) {
        f = d[j];
        V[i * n + j] = f; // V[j][i] = f: keep u for the accumulation phase
        const cj = j * n;
        g = e[j] + V[cj + j] * f;
        for (let k = j + 1; k < i; k++) {
          const vkj = V[cj + k];
          g += vkj * d[k];
          e[k] += vkj * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      // Rank-2 update of the lower triangle: A -= u·pᵀ + p·uᵀ.
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        const cj = j * n;
        for (let k = j; k < i; k++) V[cj + k] -= f * e[k] + g * d[k];
        d[j] = V[cj + i - 1];
        V[cj + i] = 0;
      }
    }
    d[i] = h;
  }

  if (!accumulate) {
    for (let j = 0; j < n; j++) d[j] = V[j * n + j];
    e[0] = 0;
    return;
  }

  // Accumulate the transformations (JAMA's second phase), still column-major.
  for (let i = 0; i < n - 1; i++) {
    V[i * n + n - 1] = V[i * n + i];
    V[i * n + i] = 1;
    const h = d[i + 1];
    const ci1 = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[ci1 + k] / h;
      for (let j = 0; j <= i; j++) {
        const cj = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[ci1 + k] * V[cj + k];
        for (let k = 0; k <= i; k++) V[cj + k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) V[ci1 + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[j * n + n - 1];
    V[j * n + n - 1] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/**
 * Implicit QL on the tridiagonal (d, e) (JAMA tql2). With `vectors`, the rotations are
 * applied to V (column-major, so each rotation touches two contiguous columns).
 */
function tql(V: Float64Array, n: number, d: Float64Array, e: Float64Array, vectors: boolean): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;

  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    // Find a small sub-diagonal element.
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]) <= eps * tst1) break;
      m++;
    }
    if (m === n) m = n - 1; // cannot happen since e[n-1] = 0; keeps the index in range

    // If m == l, d[l] is already an eigenvalue; otherwise iterate.
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 60 * n) throw new NmlabError('NUMERIC', `symmetricEigen: QL iteration did not converge for eigenvalue ${l} of a ${n}×${n} matrix`);
        // Compute the implicit shift.
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;

        // Implicit QL transformation.
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (vectors) {
            const ci = i * n;
            const ci1 = ci + n;
            for (let k = 0; k < n; k++) {
              const hk = V[ci1 + k];
              const vk = V[ci + k];
              V[ci1 + k] = s * vk + c * hk;
              V[ci + k] = c * vk - s * hk;
            }
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/** sqrt(a² + b²) without overflow or underflow; Math.hypot is variadic and several times slower. */
function hypot(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  if (x > y) {
    const r = y / x;
    return x * Math.sqrt(1 + r * r);
  }
  if (y === 0) return 0;
  const r = x / y;
  return y * Math.sqrt(1 + r * r);
}
