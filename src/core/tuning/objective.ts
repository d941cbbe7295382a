/**
 * The training objective of one step, shared by fit() and the tests: CE of the head on Z, and
 * for NMTune L = CE + w_mse·L_MSE + w_cov·L_COV + w_svd·L_SVD (eq. 7 with per-term weights).
 *
 * Two forms (src/shared/contract/tuning.ts, `TunePreset`):
 * - `paper`: one view; `x` is F, L_MSE is eq. 4 between F and Z = h(F).
 * - `reference`: the authors' `nml_tune.py` step. `x` holds the weak view's rows, then the
 *   strong view's (2B rows, `inputs = torch.cat([inputs_w, inputs_s])`); Z = h(x) on all 2B
 *   rows (BatchNorm statistics over both views); CE on all 2B rows with the labels repeated;
 *   L_MSE = `nn.MSELoss()` (element mean) between the normalised Z of the strong half and the
 *   normalised, detached x of the weak half; L_COV and L_SVD on all 2B rows of Z.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TunePreset, TuneTerms } from '../../shared/contract/tuning';
import { crossEntropy, covTerm, mseTerm, svdTerm } from './losses';
import type { BatchStats, Mlp } from './mlp';

export interface ObjectiveTerms {
  total: tf.Scalar;
  ce: tf.Scalar;
  mse?: tf.Scalar;
  cov?: tf.Scalar;
  svd?: tf.Scalar;
}

export interface ObjectiveInputs {
  /** The MLP h, or null for linear probing (Z = F). */
  mlp: Mlp | null;
  head: { w: tf.Tensor; b: tf.Tensor };
  /** Input rows of h: F (paper), or the weak view's rows then the strong view's (reference). */
  x: tf.Tensor2D;
  /** One label per row of `x`. */
  labels: tf.Tensor1D;
  preset: TunePreset;
  /** NMTune term weights, or null for plain CE (LP, MLP). */
  terms: TuneTerms | null;
  /** Receives BatchNorm batch statistics (training mode). */
  stats?: BatchStats[];
}

/** Build the step's loss terms (call inside tf.variableGrads or tf.tidy). */
export function objective(inp: ObjectiveInputs): ObjectiveTerms {
  const z = inp.mlp ? inp.mlp.forward(inp.x, true, inp.stats) : inp.x;
  const logits = tf.add(tf.matMul(z, inp.head.w), inp.head.b) as tf.Tensor2D;
  const ce = crossEntropy(logits, inp.labels);
  if (!inp.terms) return { total: ce, ce };
  const w = inp.terms;
  let mse: tf.Scalar;
  if (inp.preset === 'reference') {
    const half = inp.x.shape[0] / 2;
    const [weakX] = tf.split(inp.x, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
    const strongZ = tf.slice(z, [half, 0], [half, z.shape[1]]);
    // x is an input, not built from variables: the target is detached by construction.
    mse = mseTerm(weakX, strongZ, 'element-mean');
  } else mse = mseTerm(inp.x, z, 'row-mean');
  const cov = covTerm(z);
  const svd = svdTerm(z, w.svdTopK);
  const total = tf.addN([ce, tf.mul(mse, w.mse), tf.mul(cov, w.cov), tf.mul(svd, w.svd)]) as tf.Scalar;
  return { total, ce, mse, cov, svd };
}
