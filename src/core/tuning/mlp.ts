/**
 * The black-box tuning networks (DESIGN §4): the MLP h that maps features F to Z of the same
 * width D — `hiddenBlocks` blocks of Linear + BatchNorm + ReLU of width r·D, then a last
 * Linear back to D — and the linear classification head. Optionally the authors' residual
 * (`ImageEncoderMLP` with `mlp_with_res`): Z = s ⊙ h(F) + F, s a learned per-dimension scale
 * initialised to `residualScaleInit` (their README uses 1.0).
 *
 * Initialisation and BatchNorm follow torch's `nn.Linear` and `nn.BatchNorm1d` so that runs
 * are comparable with the PyTorch reference: weights and biases U(−1/√fan_in, 1/√fan_in);
 * BatchNorm normalises with the biased batch variance, keeps running statistics with momentum
 * 0.1 (the running variance from the unbiased batch variance), ε = 1e-5, and uses the running
 * statistics in evaluation.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from './rng';

export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** Shape of the MLP. */
export interface MlpSpec {
  dim: number;
  ratio: number;
  hiddenBlocks: number;
  residual: boolean;
  /** Initial value of every entry of s (default 1). */
  residualScaleInit?: number;
}

/** Batch statistics of one BatchNorm layer, kept out of the gradient tape for the update. */
export interface BatchStats {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  rows: number;
}

function uniform(rng: Rng, shape: number[], bound: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
  return tf.tensor(data, shape);
}

/** A variable owning a copy of `t`; `t` is disposed (tf.variable would leave it alive). */
export function variableFrom(t: tf.Tensor, trainable = true): tf.Variable {
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

/** A torch-style `nn.Linear(fanIn, fanOut)` as variables W (fanIn×fanOut) and b. */
export function linearInit(rng: Rng, fanIn: number, fanOut: number): { w: tf.Variable; b: tf.Variable } {
  const bound = 1 / Math.sqrt(fanIn);
  // torch draws the weight before the bias; keep that order for reproducibility.
  return { w: variableFrom(uniform(rng, [fanIn, fanOut], bound)), b: variableFrom(uniform(rng, [fanOut], bound)) };
}

/**
 * The authors' head (`ClassificationHead(False, kaiming_uniform(empty(C, D)))`): torch's
 * `kaiming_uniform_` defaults (a = 0, fan_in = D, gain √2) give U(±√(6/D)); the bias is zero.
 */
export function kaimingHeadInit(rng: Rng, fanIn: number, fanOut: number): { w: tf.Variable; b: tf.Variable } {
  return { w: variableFrom(uniform(rng, [fanIn, fanOut], Math.sqrt(6 / fanIn))), b: variableFrom(tf.zeros([fanOut])) };
}

/** The MLP h: trainable variables in `vars` (named like torch's state dict), running stats apart. */
export class Mlp {
  readonly vars: Record<string, tf.Variable> = {};
  readonly running: Array<{ mean: tf.Variable; variance: tf.Variable }> = [];

  constructor(
    readonly spec: MlpSpec,
    rng: Rng,
  ) {
    const hidden = Math.round(spec.ratio * spec.dim);
    let inDim = spec.dim;
    for (let i = 0; i < spec.hiddenBlocks; i++) {
      const { w, b } = linearInit(rng, inDim, hidden);
      this.vars[`block${i}.weight`] = w;
      this.vars[`block${i}.bias`] = b;
      this.vars[`block${i}.bn.gamma`] = variableFrom(tf.ones([hidden]));
      this.vars[`block${i}.bn.beta`] = variableFrom(tf.zeros([hidden]));
      this.running.push({ mean: variableFrom(tf.zeros([hidden]), false), variance: variableFrom(tf.ones([hidden]), false) });
      inDim = hidden;
    }
    const { w, b } = linearInit(rng, inDim, spec.dim);
    this.vars['out.weight'] = w;
    this.vars['out.bias'] = b;
    if (spec.residual) this.vars['residual.scale'] = variableFrom(tf.fill([spec.dim], spec.residualScaleInit ?? 1));
  }

  /**
   * Z = h(F). In training mode BatchNorm uses batch statistics, which are pushed (kept,
   * outside any tidy) onto `stats` for {@link Mlp.updateRunningStats}.
   */
  forward(f: tf.Tensor2D, training: boolean, stats?: BatchStats[]): tf.Tensor2D {
    let h: tf.Tensor2D = f;
    for (let i = 0; i < this.spec.hiddenBlocks; i++) {
      h = tf.add(tf.matMul(h, this.vars[`block${i}.weight`]), this.vars[`block${i}.bias`]) as tf.Tensor2D;
      let mean: tf.Tensor;
      let variance: tf.Tensor;
      if (training) {
        const m = tf.moments(h, 0);
        mean = m.mean;
        variance = m.variance;
        stats?.push({ mean: tf.keep(m.mean) as tf.Tensor1D, variance: tf.keep(m.variance) as tf.Tensor1D, rows: h.shape[0] });
      } else {
        mean = this.running[i].mean;
        variance = this.running[i].variance;
      }
      const scale = tf.mul(tf.rsqrt(tf.add(variance, BN_EPS)), this.vars[`block${i}.bn.gamma`]);
      h = tf.relu(tf.add(tf.mul(tf.sub(h, mean), scale), this.vars[`block${i}.bn.beta`])) as tf.Tensor2D;
    }
    let z = tf.add(tf.matMul(h, this.vars['out.weight']), this.vars['out.bias']) as tf.Tensor2D;
    if (this.spec.residual) z = tf.add(tf.mul(z, this.vars['residual.scale']), f) as tf.Tensor2D;
    return z;
  }

  /** torch's running-stat update: r ← (1−m)·r + m·batch, with the unbiased batch variance. */
  updateRunningStats(stats: BatchStats[]): void {
    stats.forEach((s, i) => {
      const r = this.running[i];
      tf.tidy(() => {
        r.mean.assign(tf.add(tf.mul(r.mean, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
        const unbiased = tf.mul(s.variance, s.rows / Math.max(1, s.rows - 1));
        r.variance.assign(tf.add(tf.mul(r.variance, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
      });
      s.mean.dispose();
      s.variance.dispose();
    });
  }

  dispose(): void {
    for (const v of Object.values(this.vars)) v.dispose();
    for (const r of this.running) {
      r.mean.dispose();
      r.variance.dispose();
    }
  }
}
