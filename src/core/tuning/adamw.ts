/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), step for step the same update as
 * `torch.optim.AdamW` (amsgrad off, maximize off):
 *
 *   p ← p · (1 − lr·wd)
 *   m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²
 *   p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
 *
 * Note where ε sits (added after the bias correction of √v), which is torch's choice and
 * differs from tf.train.adam. The learning rate is passed per step so schedules stay outside.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWOptions {
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export class AdamW {
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(opts: AdamWOptions = {}) {
    this.weightDecay = opts.weightDecay ?? 1e-2;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
  }

  /** Number of steps taken. */
  get steps(): number {
    return this.t;
  }

  /**
   * Apply one update. `grads` maps variable names to gradients (as `tf.variableGrads`
   * returns them); variables without a gradient are left alone (torch skips `grad is None`).
   */
  step(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    this.t++;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = 1 - this.beta2 ** this.t;
    const { beta1, beta2, eps, weightDecay } = this;
    for (const [name, p] of Object.entries(vars)) {
      const g = grads[name];
      if (!g) continue;
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        m = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
        v = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const mm = m;
      const vv = v;
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(mm, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(vv, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), eps);
        const decayed = weightDecay !== 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const p1 = tf.sub(decayed, tf.mul(tf.div(m1, denom), lr / bc1));
        mm.assign(m1);
        vv.assign(v1);
        p.assign(p1);
      });
    }
  }

  /** Free the moment buffers. */
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
