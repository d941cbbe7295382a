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
import { rawFloat32 } from '../tf/rawData';
import { adamwWasm, type AdamWWasm } from '../linalg/wasm/index';

export interface AdamWOptions {
  /**
   * Update through direct memory access in one fused loop where the backend allows it (wasm,
   * cpu); otherwise, or with false, through tfjs ops. Default true.
   */
  fused?: boolean;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** The hyperparameters of one AdamW update of plain arrays. */
export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** The per-step scalars of the update at step `t` (1-based), shared by the JS loop and the wasm kernel. */
export interface AdamWScalars {
  /** 1 − β₁ */
  c1: number;
  /** 1 − β₂ */
  c2: number;
  /** 1 − lr·wd, the decoupled weight decay. */
  decay: number;
  /** lr / (1 − β₁ᵗ) */
  step: number;
  /**
   * 1 / √(1 − β₂ᵗ): √v/√(1−β₂ᵗ) as a product, a multiply instead of a divide per element
   * (~20 % of the loop).
   */
  invSbc2: number;
}

export function adamwScalars(lr: number, t: number, opts: AdamWHyper): AdamWScalars {
  const { beta1, beta2, weightDecay } = opts;
  return {
    c1: 1 - beta1,
    c2: 1 - beta2,
    decay: 1 - lr * weightDecay,
    step: lr / (1 - beta1 ** t),
    invSbc2: 1 / Math.sqrt(1 - beta2 ** t),
  };
}

/**
 * One AdamW update of plain arrays at step `t` (1-based): m and v in place, the new parameter
 * into `out` (which may be `p` itself).
 */
export function adamwUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  out: Float32Array,
  lr: number,
  t: number,
  opts: AdamWHyper,
): void {
  const { beta1, beta2, eps } = opts;
  const { c1, c2, decay, step, invSbc2 } = adamwScalars(lr, t, opts);
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = beta1 * m[i] + c1 * gi;
    const vi = beta2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    out[i] = p[i] * decay - (step * mi) / (Math.sqrt(vi) * invSbc2 + eps);
  }
}

export class AdamW {
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly fused: boolean;
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(opts: AdamWOptions = {}) {
    this.weightDecay = opts.weightDecay ?? 1e-2;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.fused = opts.fused ?? true;
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
      if (this.fused && this.fusedStep(p, g, mm, vv, lr)) continue;
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

  /**
   * The same update as one loop over memory: m and v (owned here) in place; the new parameter
   * into a fresh tensor, so that its tensor id changes as with `assign` (XNNPACK caches packed
   * weights by id, so a weight must never change in place). False when the backend does not
   * expose its memory.
   */
  private fusedStep(p: tf.Variable, grad: tf.Tensor, m: tf.Variable, v: tf.Variable, lr: number): boolean {
    if (rawFloat32(p) === null) return false;
    const next = tf.zerosLike(p);
    // Views only after the allocation above (a wasm heap growth detaches older views).
    const pw = rawFloat32(p);
    const nw = rawFloat32(next);
    const gw = rawFloat32(grad);
    const mw = rawFloat32(m);
    const vw = rawFloat32(v);
    if (!pw || !nw || !gw || !mw || !vw || gw.length !== pw.length) {
      next.dispose();
      return false;
    }
    adamwUpdate(pw, gw, mw, vw, nw, lr, this.t, this);
    p.assign(next);
    next.dispose();
    return true;
  }

  /** Free the moment buffers. */
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/**
 * AdamW over named plain Float32Array parameters (the onnxruntime tuning engine's): the
 * parameters, their moments and a gradient slot live in one WebAssembly memory of their own
 * and each step is the f32x4 kernel of src/core/linalg/wasm (kernels.ll, the same formula as
 * {@link adamwUpdate} in float32, as torch computes it). Measured on the MLP step's 2.1 M
 * parameters: ~18 ms per step for the JS loop, a few ms for the kernel (bench/RESULTS.md).
 * Where WebAssembly SIMD is missing the JS loop runs on ordinary arrays.
 */
export class ArrayAdamW {
  /** The parameters by name; views into the kernel's memory (feed them to ORT as they are). */
  readonly params: Record<string, Float32Array> = {};
  private readonly slots: { name: string; p: Float32Array; m: Float32Array; v: Float32Array; g: Float32Array }[] = [];
  private readonly kernel: AdamWWasm | null;
  private t = 0;

  /** `initial`: each parameter's starting values (copied). */
  constructor(initial: Record<string, Float32Array>, private readonly opts: AdamWHyper) {
    const names = Object.keys(initial);
    const total = names.reduce((s, k) => s + initial[k].length, 0);
    this.kernel = adamwWasm(16 * total);
    let at = 0;
    const take = (n: number): Float32Array => {
      if (!this.kernel) return new Float32Array(n);
      const a = new Float32Array(this.kernel.buffer, 4 * at, n);
      at += n;
      return a;
    };
    for (const name of names) {
      const n = initial[name].length;
      const slot = { name, p: take(n), m: take(n), v: take(n), g: take(n) };
      slot.p.set(initial[name]);
      this.params[name] = slot.p;
      this.slots.push(slot);
    }
  }

  /**
   * One gradient buffer per parameter (in the kernel's memory): a producer that writes the
   * gradients straight into these saves {@link step} a copy.
   */
  gradBuffers(): Record<string, Float32Array> {
    return Object.fromEntries(this.slots.map((s) => [s.name, s.g]));
  }

  /** Whether the WebAssembly kernel runs the update (false: the JS loop). */
  get wasm(): boolean {
    return this.kernel !== null;
  }

  /** One update of every parameter with `grads` (by name) at learning rate `lr`. */
  step(grads: Record<string, Float32Array>, lr: number): void {
    this.t++;
    const { beta1, beta2, eps } = this.opts;
    const { c1, c2, decay, step, invSbc2 } = adamwScalars(lr, this.t, this.opts);
    for (const s of this.slots) {
      const g = grads[s.name];
      if (!g || g.length !== s.p.length) throw new Error(`ArrayAdamW: gradient of "${s.name}" missing or of the wrong length`);
      if (!this.kernel) {
        adamwUpdate(s.p, g, s.m, s.v, s.p, lr, this.t, this.opts);
        continue;
      }
      if (g !== s.g) s.g.set(g);
      const off = (a: Float32Array) => a.byteOffset;
      this.kernel.adamw(off(s.p), off(s.g), off(s.m), off(s.v), s.p.length, beta1, c1, beta2, c2, decay, step, invSbc2, eps);
    }
  }
}
