/**
 * What the NMTune loss tests share (nmtune.test.ts, nmtune-reference.test.ts): one objective
 * evaluated on a fixture's model and batch, its five terms checked against PyTorch's.
 */
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { objective, type ObjectiveInputs } from '../../src/core/tuning/objective';

/** CE, L_MSE, L_COV, L_SVD and the weighted total, as the PyTorch fixtures record them. */
export interface TermValues {
  ce: number;
  mse: number;
  cov: number;
  svd: number;
  total: number;
}

/** Evaluate `objective(inputs)` (an NMTune one: all terms present) and compare each term to `want` to 1e-5, relative above 1. */
export function expectTermsClose(inputs: ObjectiveInputs, want: TermValues): void {
  const values = tf.tidy(() => {
    const t = objective(inputs);
    return tf.stack([t.ce, t.mse!, t.cov!, t.svd!, t.total]);
  });
  const got = values.dataSync();
  (['ce', 'mse', 'cov', 'svd', 'total'] as const).forEach((term, i) => expect(Math.abs(got[i] - want[term]), term).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[term]))));
  values.dispose();
}
