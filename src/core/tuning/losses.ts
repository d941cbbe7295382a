/**
 * NMTune's regularisers (paper §6.1, eq. 4–7; DESIGN §4) and cross-entropy, as tfjs ops.
 *
 * - L_MSE (eq. 4): mean over the batch of ‖f/‖f‖ − z/‖z‖‖², rows L2-normalised as torch's
 *   `F.normalize` does (norm clamped below at 1e-12). The authors' code takes
 *   `nn.MSELoss()` of the same normalised rows: the mean over all M·D elements, 1/D of eq. 4.
 * - L_COV (eq. 5): (1/D) Σ_{i≠j} C(Z)ᵢⱼ², C the sample covariance over the batch (M−1).
 * - L_SVD (eq. 6): −Σ_{i≤k} σᵢ(Z) / (k·Σⱼ σⱼ(Z)); k = 1 is the paper's term, k = 5 the
 *   reference code's "mean of the top-5 normalised singular values".
 *
 * tfjs has no SVD, so L_SVD is a custom gradient. Its singular values and vectors come from
 * the float64 eigen-decomposition of the smaller Gram matrix (ZZᵀ when M ≤ D, else ZᵀZ), and
 * its gradient is Σⱼ (∂L/∂σⱼ) uⱼvⱼᵀ, using ∂σⱼ/∂Z = uⱼvⱼᵀ. With ZZᵀ = U Λ Uᵀ this is
 * U·diag(cⱼ/σⱼ)·Uᵀ·Z (vⱼ = Zᵀuⱼ/σⱼ); with ZᵀZ = V Λ Vᵀ, Z·V·diag(cⱼ/σⱼ)·Vᵀ. Singular values
 * that are numerically zero get no gradient (σ is not differentiable there).
 */
import * as tf from '@tensorflow/tfjs-core';
import { gramRows, gramCols, symmetricRowProduct } from '../linalg/gram';
import { symmetricEigen, SymEigWorkspace } from '../linalg/symeig';

/** Mean softmax cross-entropy of integer labels (torch `CrossEntropyLoss`). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const logp = tf.logSoftmax(logits);
  const onehot = tf.oneHot(labels, logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, onehot), 1))) as tf.Scalar;
}

/** Rows divided by max(‖row‖₂, 1e-12). */
export function normalizeRows(x: tf.Tensor2D): tf.Tensor2D {
  const norm = tf.sqrt(tf.sum(tf.square(x), 1, true));
  return tf.div(x, tf.maximum(norm, 1e-12));
}

/**
 * Eq. 4: consistency between (normalised) backbone features F and tuned features Z;
 * `row-mean` sums each row's squares and averages over rows (eq. 4), `element-mean` averages
 * over every element (`nn.MSELoss()` in the authors' code).
 */
export function mseTerm(f: tf.Tensor2D, z: tf.Tensor2D, reduction: 'row-mean' | 'element-mean' = 'row-mean'): tf.Scalar {
  const sq = tf.square(tf.sub(normalizeRows(f), normalizeRows(z)));
  return reduction === 'element-mean' ? tf.mean(sq) : tf.mean(tf.sum(sq, 1));
}

/**
 * Eq. 5: squared off-diagonal entries of the batch covariance, over D. With Zc the centred
 * batch, ‖C‖²_F = ‖ZcᵀZc‖²_F/(M−1)² = ‖ZcZcᵀ‖²_F/(M−1)² (the two Gram matrices share their
 * non-zero eigenvalues), so the smaller one is formed: M×M for a batch of 128 and D = 512, a
 * quarter of the work of C itself, forward and backward. diag(C)ᵢ = Σ_rows zcᵢ²/(M−1).
 */
export function covTerm(z: tf.Tensor2D): tf.Scalar {
  const [m, d] = z.shape;
  const zc = tf.sub(z, tf.mean(z, 0, true));
  const gram = m <= d ? tf.matMul(zc, zc, false, true) : tf.matMul(zc, zc, true, false);
  const all = tf.div(tf.sum(tf.square(gram)), (m - 1) * (m - 1));
  const diag = tf.sum(tf.square(tf.div(tf.sum(tf.square(zc), 0), m - 1)));
  return tf.div(tf.sub(all, diag), d) as tf.Scalar;
}

/** Value and gradient of the SVD term for a row-major M×D matrix, all in float64. */
export interface SvdTermResult {
  value: number;
  /** ∂L/∂Z, row-major M×D. */
  grad: Float64Array;
  /** Singular values, descending (min(M, D) of them). */
  singularValues: Float64Array;
}

/**
 * L_SVD and the small symmetric matrix P with ∂L/∂Z = P·Z (when `viaRows`, P is M×M) or
 * Z·P (P is D×D): P = Q·diag(cⱼ/σⱼ)·Qᵀ over the eigenvectors Q of the smaller Gram matrix.
 */
export interface SvdTermParts {
  value: number;
  p: Float64Array;
  viaRows: boolean;
  singularValues: Float64Array;
}

const workspace = new SymEigWorkspace();

/** See {@link SvdTermParts}; the decomposition behind {@link svdTerm}. */
export function svdTermParts(z: Float32Array | Float64Array, rows: number, cols: number, topK: number): SvdTermParts {
  const small = Math.min(rows, cols);
  const viaRows = rows <= cols;
  const g = viaRows ? gramRows(z, rows, cols) : gramCols(z, rows, cols);
  const { values, vectors } = symmetricEigen(g, small, { vectors: true, workspace });
  const vec = vectors!;
  const sigma = new Float64Array(small);
  for (let i = 0; i < small; i++) sigma[i] = Math.sqrt(Math.max(values[i], 0));
  // Through the Gram matrix, a zero singular value comes out as √(roundoff) ≈ 1e-8·σ₁, not 0.
  // Those are noise (below float32 resolution of Z): count them as exactly zero, in the value
  // and in the gradient alike.
  const tol = sigma[0] * Math.max(rows, cols) * 1e-7;
  for (let i = 0; i < small; i++) if (sigma[i] <= tol) sigma[i] = 0;
  let total = 0;
  for (let i = 0; i < small; i++) total += sigma[i];
  const k = Math.min(Math.max(1, Math.floor(topK)), small);
  let top = 0;
  for (let i = 0; i < k; i++) top += sigma[i];
  if (!(total > 0)) return { value: 0, p: new Float64Array(small * small), viaRows, singularValues: sigma };
  const value = -top / (k * total);
  // ∂L/∂σⱼ = −[j<k]/(k·S) + top/(k·S²); weight wⱼ = cⱼ/σⱼ for the projector sum.
  const w = new Float64Array(small);
  for (let j = 0; j < small; j++) {
    if (sigma[j] === 0) continue;
    const c = (j < k ? -1 / (k * total) : 0) + top / (k * total * total);
    w[j] = c / sigma[j];
  }
  // P = Q·diag(w)·Qᵀ, Q's column j at index a*small + j.
  const qw = new Float64Array(small * small);
  for (let a = 0; a < small; a++) for (let j = 0; j < small; j++) qw[a * small + j] = vec[a * small + j] * w[j];
  const p = symmetricRowProduct(qw, vec, small, small);
  return { value, p, viaRows, singularValues: sigma };
}

/**
 * L_SVD = −(1/k) Σ_{i≤k} σᵢ/Σⱼσⱼ and its gradient (see the module comment), all in float64.
 * Pure function of the data (the tests check it against finite differences).
 */
export function svdTermValueAndGrad(z: Float32Array | Float64Array, rows: number, cols: number, topK: number): SvdTermResult {
  const { value, p, viaRows, singularValues } = svdTermParts(z, rows, cols, topK);
  const grad = new Float64Array(rows * cols);
  if (viaRows) {
    // grad = P (M×M) · Z (M×D)
    for (let a = 0; a < rows; a++) {
      const out = a * cols;
      for (let b = 0; b < rows; b++) {
        const pab = p[a * rows + b];
        if (pab === 0) continue;
        const zb = b * cols;
        for (let c = 0; c < cols; c++) grad[out + c] += pab * z[zb + c];
      }
    }
  } else {
    // grad = Z (M×D) · P (D×D)
    for (let a = 0; a < rows; a++) {
      const za = a * cols;
      for (let b = 0; b < cols; b++) {
        const zab = z[za + b];
        if (zab === 0) continue;
        const pb = b * cols;
        for (let c = 0; c < cols; c++) grad[za + c] += zab * p[pb + c];
      }
    }
  }
  return { value, grad, singularValues };
}

/**
 * Eq. 6 as a tfjs op with a custom gradient. Reads Z back from the backend (one M×D download
 * per step), decomposes its Gram matrix in float64, and forms the gradient P·Z (or Z·P) with
 * a float32 matMul on the backend.
 */
export function svdTerm(z: tf.Tensor2D, topK: number): tf.Scalar {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const x = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const [rows, cols] = x.shape;
    const { value, p, viaRows } = svdTermParts(x.dataSync() as Float32Array, rows, cols, topK);
    const n = viaRows ? rows : cols;
    save([x, tf.tensor2d(Float32Array.from(p), [n, n])]);
    return {
      value: tf.scalar(value),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [zs, ps] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = viaRows ? tf.matMul(ps, zs) : tf.matMul(zs, ps);
        return [tf.mul(dy as tf.Tensor, g)];
      },
    };
  });
  return op(z) as tf.Scalar;
}
