/**
 * Eigen-decomposition of a real symmetric matrix in float64: Householder reduction to
 * tridiagonal form (LAPACK `dsytd2`'s, with fused passes; with vectors, the transformation is
 * then formed from the reflectors as `dorgtr` does), then the implicit QL algorithm with
 * Wilkinson-style shifts (EISPACK `tql2` as written in JAMA, public domain), restructured for
 * a flat Float64Array so that every inner loop walks memory contiguously.
 *
 * Used for the spectrum (DESIGN §4: singular values through the smaller Gram matrix, values
 * only) and by NMTune's SVD term (the gradient ∂σᵢ/∂Z = uᵢvᵢᵀ needs the vectors of the
 * 128×128 batch Gram matrix every training step), so the routine is allocation-light: pass
 * a {@link SymEigWorkspace} to reuse buffers across calls.
 *
 * Storage: matrices are column-major (`V[k][j]` at `j*n + k`), so the reduction's columns below
 * the diagonal, the reflectors and the QL rotations' columns are all stride-1. The input is
 * symmetric, so copying it verbatim is the same as copying it column-major.
 */
import { NmlabError } from '../../shared/errors';
import { linalgWasm, type LinalgWasm } from './wasm/index';

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
  /**
   * 'auto' (default): the hot loops run as WebAssembly SIMD where available (the values-only
   * reduction for n ≥ 64, the QL rotations of the vectors path for n ≥ 32); 'js': plain
   * JavaScript throughout (for comparison and tests).
   */
  engine?: 'auto' | 'js';
}

/** Scratch space for {@link symmetricEigen}; keep one per caller to avoid allocation per call. */
export class SymEigWorkspace {
  v = new Float64Array(0);
  d = new Float64Array(0);
  e = new Float64Array(0);
  order = new Int32Array(0);
  /** Householder vector, its update partner, the next vector and A·v (values-only path). */
  hv = new Float64Array(0);
  hw = new Float64Array(0);
  hu = new Float64Array(0);
  hp = new Float64Array(0);
  /** τ of each Householder reflector (vectors path). */
  tau = new Float64Array(0);
  /** The orthogonal transformation when it cannot live in the kernels' memory (vectors path). */
  q = new Float64Array(0);

  ensure(n: number): void {
    if (this.d.length < n) {
      this.d = new Float64Array(n);
      this.e = new Float64Array(n);
      this.order = new Int32Array(n);
      this.hv = new Float64Array(n);
      this.hw = new Float64Array(n);
      this.hu = new Float64Array(n);
      this.hp = new Float64Array(n);
      this.tau = new Float64Array(n);
    }
  }

  /** The n×n working matrix (allocated on first need, then reused). */
  matrix(n: number): Float64Array {
    if (this.v.length < n * n) this.v = new Float64Array(n * n);
    return this.v;
  }

  /** The n×n transformation matrix (allocated on first need, then reused). */
  transformation(n: number): Float64Array {
    if (this.q.length < n * n) this.q = new Float64Array(n * n);
    return this.q;
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
  const d = ws.d;
  const e = ws.e;
  for (let i = 0; i < n * n; i++) {
    const x = a[i];
    // x - x is NaN exactly for NaN and ±Inf.
    if (x - x !== 0) throw new NmlabError('NUMERIC', `symmetricEigen: matrix element ${i} (row ${Math.floor(i / n)}, column ${i % n}) is ${x}`);
  }

  // The working matrices live in the WebAssembly kernels' memory when they run, else in the
  // workspace. Either way they are reused between calls: fresh memory costs page faults.
  let W: Float64Array;
  let sweep: WasmSweep | null = null;
  if (wantVectors) {
    ({ q: W, sweep } = tridiagonalizeVectors(a, n, d, e, ws, (opts.engine ?? 'auto') === 'auto' && n >= 32 ? linalgWasm() : null));
  } else {
    W = tridiagonalizeValues(a, n, d, e, ws, opts.engine ?? 'auto');
  }
  tql(W, n, d, e, wantVectors, sweep);

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
    for (let r = 0; r < n; r++) vectors[r * n + i] = W[src + r];
  }
  return { values, vectors };
}

/** Copies `a` to a working matrix, reduces it (values only) and returns the working matrix. */
function tridiagonalizeValues(a: Float64Array, n: number, d: Float64Array, e: Float64Array, ws: SymEigWorkspace, engine: 'auto' | 'js'): Float64Array {
  const m = engine === 'auto' && n >= 64 ? reductionMemory(linalgWasm(), n, 1) : null;
  if (m) {
    const [A] = m.matrices;
    A.set(a.subarray(0, n * n));
    tridiagonalizeFused(A, n, d, e, m.v, m.w, m.u, m.p, m.ctx);
    return A;
  }
  const V = ws.matrix(n);
  V.set(a.subarray(0, n * n));
  tridiagonalizeFused(V, n, d, e, ws.hv, ws.hw, ws.hu, ws.hp);
  return V;
}

/**
 * The same reduction keeping its reflectors, then the orthogonal Q with A = Q·T·Qᵀ formed from
 * them (LAPACK `dorgtr`'s order: Q = H₀·H₁·…, applied to the identity last reflector first, so
 * that each one touches only the trailing block). Returns Q column-major, in the kernels'
 * memory when `k` is given and can hold it (with room there for tql's rotations, which then
 * run there: `sweep`), else in the workspace.
 * This replaced JAMA's `tred2`, whose reduction and accumulation ran as scalar JavaScript and
 * took most of the time NMTune's 128×128 Gram (every step) spent here (bench/RESULTS.md).
 */
function tridiagonalizeVectors(a: Float64Array, n: number, d: Float64Array, e: Float64Array, ws: SymEigWorkspace, k: LinalgWasm | null): { q: Float64Array; sweep: WasmSweep | null } {
  const tau = ws.tau;
  const m = reductionMemory(k, n, 2);
  const [A, Q] = m?.matrices ?? [ws.matrix(n), ws.transformation(n)];
  const { v, w, u, p } = m ?? { v: ws.hv, w: ws.hw, u: ws.hu, p: ws.hp };
  const wasm = m?.ctx;
  A.set(a.subarray(0, n * n));
  tridiagonalizeFused(A, n, d, e, v, w, u, p, wasm, tau);

  Q.fill(0);
  for (let i = 0; i < n; i++) Q[i * n + i] = 1;
  for (let c = n - 2; c >= 0; c--) {
    const t = tau[c];
    if (t === 0) continue;
    // H_c = I − τ·u·uᵀ acts on rows c+1..n-1, where only columns c+1..n-1 of Q are non-zero.
    const len = n - c - 1;
    const uo = c * n + c + 1;
    const xo = (c + 1) * n + c + 1;
    if (wasm) {
      wasm.k.reflect(A.byteOffset + 8 * uo, Q.byteOffset + 8 * xo, len, t, len, n);
      continue;
    }
    for (let j = 0; j < len; j++) {
      const x = xo + j * n;
      let g = 0;
      for (let r = 0; r < len; r++) g += A[uo + r] * Q[x + r];
      g *= t;
      for (let r = 0; r < len; r++) Q[x + r] -= g * A[uo + r];
    }
  }
  // The reduction's vectors v and w are free now: tql keeps a sweep's rotations there.
  return { q: Q, sweep: wasm ? { k: wasm.k, c: v, s: w } : null };
}

/**
 * The reduction's working set in the kernels' memory: `count` n×n matrices, then its vectors
 * v, w, u, p (n each) and a 2-element result slot; null without the kernels or room for it.
 */
function reductionMemory(k: LinalgWasm | null, n: number, count: number): { matrices: Float64Array[]; v: Float64Array; w: Float64Array; u: Float64Array; p: Float64Array; ctx: WasmCtx } | null {
  const base = count * n * n;
  if (!k || !k.reserve(8 * (base + 4 * n + 2))) return null;
  const buf = k.memory.buffer;
  const at = (offset: number, length: number): Float64Array => new Float64Array(buf, 8 * offset, length);
  const matrices = Array.from({ length: count }, (_, i) => at(i * n * n, n * n));
  return { matrices, v: at(base, n), w: at(base + n, n), u: at(base + 2 * n, n), p: at(base + 3 * n, n), ctx: { k, out: at(base + 4 * n, 2) } };
}

/** The kernels and room in their memory for one QL sweep's rotations (n each). */
interface WasmSweep {
  k: LinalgWasm;
  c: Float64Array;
  s: Float64Array;
}

/** The WebAssembly kernels and a 2-element result slot in their memory. */
interface WasmCtx {
  k: LinalgWasm;
  out: Float64Array;
}

/**
 * Householder tridiagonalisation, LAPACK `dsytd2`-style on the lower triangle (column-major,
 * so each column below the diagonal is contiguous), with two memory-traffic savings that make
 * it ~2× faster than the JAMA loop on large matrices (the spectrum's 1024×1024 Gram):
 * - fusion: the rank-2 update A ← A − v·wᵀ − w·vᵀ of step j and the product p = A·v' that
 *   step j+1 needs happen in one pass over the trailing matrix (v' is built first from the one
 *   column it depends on);
 * - two columns per pass, so v, w, v' and p are loaded once for two matrix elements.
 * On return d is the diagonal and e[1..n-1] the sub-diagonal (e[0] = 0), as tql() expects.
 * With `keep`, reflector H_c = I − τ_c·u·uᵀ is kept: u (u[c+1] = 1) in column c below the
 * diagonal, which the reduction no longer reads once the reflector is built, τ_c in keep[c].
 *
 * v: current Householder vector (rows j+1..n-1); w: its update partner (A ← A − v wᵀ − w vᵀ);
 * u: the next Householder vector; p: A·u accumulated during the fused pass.
 */
function tridiagonalizeFused(A: Float64Array, n: number, d: Float64Array, e: Float64Array, v: Float64Array, w: Float64Array, u: Float64Array, p: Float64Array, wasm?: WasmCtx, keep?: Float64Array): void {
  e[0] = 0;
  if (n === 1) {
    d[0] = A[0];
    return;
  }
  w.fill(0);
  v.fill(0);
  // Step 0's vector, and p = T0·v0 by a pass with w = 0 (the update is then exactly a no-op).
  let tau = householder(A, n, 0, u);
  if (keep) keepReflector(A, n, 0, u, tau, keep);
  let beta = hhBeta;
  p.fill(0);
  fusedPass(A, n, 1, v, w, u, p, wasm);
  for (let j = 0; j < n - 1; j++) {
    // Shift: the vector built for this step becomes current.
    for (let r = j + 1; r < n; r++) v[r] = u[r];
    d[j] = A[j * n + j];
    e[j + 1] = beta;
    // w = τp − (τ²/2)(pᵀv) v, so that H·T·H = T − v wᵀ − w vᵀ.
    if (tau !== 0) {
      let pv = 0;
      for (let r = j + 1; r < n; r++) {
        p[r] *= tau;
        pv += p[r] * v[r];
      }
      const k = 0.5 * tau * pv;
      for (let r = j + 1; r < n; r++) w[r] = p[r] - k * v[r];
    } else {
      for (let r = j + 1; r < n; r++) w[r] = 0;
    }
    const c = j + 1;
    if (c === n - 1) {
      d[c] = A[c * n + c] - 2 * v[c] * w[c];
      break;
    }
    // Update column c (the first of the trailing block), build the next vector from it...
    const cc = c * n;
    const vc = v[c];
    const wc = w[c];
    for (let r = c; r < n; r++) A[cc + r] -= v[r] * wc + w[r] * vc;
    tau = householder(A, n, c, u);
    if (keep) keepReflector(A, n, c, u, tau, keep);
    beta = hhBeta;
    // ...then update the rest while accumulating p = T·u for the next step.
    for (let r = c + 1; r < n; r++) p[r] = 0;
    fusedPass(A, n, c + 1, v, w, u, p, wasm);
  }
}

/** Stores reflector c (see {@link tridiagonalizeFused}): u in column c below the diagonal, τ in keep[c]. */
function keepReflector(A: Float64Array, n: number, c: number, u: Float64Array, tau: number, keep: Float64Array): void {
  const cc = c * n;
  for (let r = c + 1; r < n; r++) A[cc + r] = u[r];
  keep[c] = tau;
}

/** β of the last {@link householder} call (module scratch, avoids an allocation per step). */
let hhBeta = 0;

/**
 * Householder reflector for column c below the diagonal, x = A[c+1..n-1, c]: fills
 * u[c+1..n-1] (u[c+1] = 1) and returns τ so that (I − τuuᵀ)x = β e₁ (β in hhBeta). Scaled by
 * max|x| against overflow/underflow.
 */
function householder(A: Float64Array, n: number, c: number, u: Float64Array): number {
  const cc = c * n;
  let scale = 0;
  for (let r = c + 1; r < n; r++) scale = Math.max(scale, Math.abs(A[cc + r]));
  if (scale === 0) {
    hhBeta = 0;
    for (let r = c + 1; r < n; r++) u[r] = 0;
    u[c + 1] = 1;
    return 0;
  }
  const inv = 1 / scale;
  const alpha = A[cc + c + 1] * inv;
  let sigma2 = 0;
  for (let r = c + 2; r < n; r++) {
    const x = A[cc + r] * inv;
    sigma2 += x * x;
  }
  if (sigma2 === 0) {
    hhBeta = A[cc + c + 1];
    for (let r = c + 1; r < n; r++) u[r] = 0;
    u[c + 1] = 1;
    return 0;
  }
  const mu = Math.sqrt(alpha * alpha + sigma2);
  const beta = alpha <= 0 ? mu : -mu;
  const v0 = alpha - beta;
  const f = inv / v0;
  u[c + 1] = 1;
  for (let r = c + 2; r < n; r++) u[r] = A[cc + r] * f;
  hhBeta = beta * scale;
  return (beta - alpha) / beta;
}

/**
 * For every column c ≥ c0 of the trailing block (lower triangle, rows r ≥ c): a ← a − v_r w_c
 * − w_r v_c, and p += T·u with the updated values (T symmetric, so each off-diagonal element
 * contributes to p_r and p_c). Two columns at a time.
 */
function fusedPass(A: Float64Array, n: number, c0: number, v: Float64Array, w: Float64Array, u: Float64Array, p: Float64Array, wasm?: WasmCtx): void {
  let c = c0;
  for (; c + 1 < n; c += 2) {
    const c1 = c + 1;
    const o0 = c * n;
    const o1 = c1 * n;
    const v0 = v[c];
    const w0 = w[c];
    const u0 = u[c];
    const v1 = v[c1];
    const w1 = w[c1];
    const u1 = u[c1];
    const a00 = A[o0 + c] - 2 * v0 * w0;
    const a10 = A[o0 + c1] - v1 * w0 - w1 * v0;
    const a11 = A[o1 + c1] - 2 * v1 * w1;
    A[o0 + c] = a00;
    A[o0 + c1] = a10;
    A[o1 + c1] = a11;
    let acc0 = a00 * u0 + a10 * u1;
    let acc1 = a10 * u0 + a11 * u1;
    const r0 = c + 2;
    if (wasm && n - r0 >= 16) {
      // The same loop in f64x2 SIMD (kernels.ll @fused2); pointers are byte offsets.
      const ab = A.byteOffset;
      wasm.k.fused2(ab + 8 * (o0 + r0), ab + 8 * (o1 + r0), v.byteOffset + 8 * r0, w.byteOffset + 8 * r0, u.byteOffset + 8 * r0, p.byteOffset + 8 * r0, n - r0, w0, v0, w1, v1, u0, u1, wasm.out.byteOffset);
      p[c] += acc0 + wasm.out[0];
      p[c1] += acc1 + wasm.out[1];
      continue;
    }
    for (let r = r0; r < n; r++) {
      const vr = v[r];
      const wr = w[r];
      const ur = u[r];
      const a0 = A[o0 + r] - vr * w0 - wr * v0;
      const a1 = A[o1 + r] - vr * w1 - wr * v1;
      A[o0 + r] = a0;
      A[o1 + r] = a1;
      acc0 += a0 * ur;
      acc1 += a1 * ur;
      p[r] += a0 * u0 + a1 * u1;
    }
    p[c] += acc0;
    p[c1] += acc1;
  }
  if (c < n) {
    // Last (single) column: only its diagonal element.
    const o = c * n;
    const a = A[o + c] - 2 * v[c] * w[c];
    A[o + c] = a;
    p[c] += a * u[c];
  }
}

/**
 * Implicit QL on the tridiagonal (d, e) (JAMA tql2). With `vectors`, the rotations are
 * applied to V (column-major, so each rotation touches two contiguous columns): with `sweep`
 * (V then lives in the kernels' memory), a sweep's rotations are recorded and applied by one
 * kernel call (kernels.ll @rotseq) instead of one call per rotation; else one by one in JS.
 */
function tql(V: Float64Array, n: number, d: Float64Array, e: Float64Array, vectors: boolean, sweep: WasmSweep | null): void {
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
          if (vectors && sweep) {
            // The rotations depend on d and e only: V's turn comes after the sweep.
            sweep.c[i] = c;
            sweep.s[i] = s;
          } else if (vectors) {
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
        if (vectors && sweep) sweep.k.rotseq(V.byteOffset, n, l, m, sweep.c.byteOffset, sweep.s.byteOffset);
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
