/**
 * The training objective of one step, shared by fit() and the tests: CE of the head on Z, and
 * for NMTune eq. 7 with per-term weights, L = CE + w_mse·L_MSE + w_cov·L_COV + w_svd·L_SVD.
 */
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, covTerm, mseTerm, svdTerm } from './losses';
import type { BatchStats, Mlp } from './mlp';
import type { NmtuneTerms } from './tuner';

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
  /** Input to h (the strong view for the reference preset). */
  x: tf.Tensor2D;
  /** Target of L_MSE (the weak view; F itself for the paper preset). No gradient flows into it. */
  target: tf.Tensor2D;
  labels: tf.Tensor1D;
  /** NMTune term weights, or null for plain CE (LP, MLP). */
  terms: NmtuneTerms | null;
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
  // The target is a plain input tensor (not built from variables), so it is detached by construction.
  const mse = mseTerm(inp.target, z);
  const cov = covTerm(z);
  const svd = svdTerm(z, w.svdTopK);
  const total = tf.addN([ce, tf.mul(mse, w.mse), tf.mul(cov, w.cov), tf.mul(svd, w.svd)]) as tf.Scalar;
  return { total, ce, mse, cov, svd };
}
