/**
 * NMLab's small ResNet-style backbone for noisy pre-training (DESIGN §4 "Pre-training in
 * NMLab"), written with explicit tfjs-core variables so that the ONNX export
 * (./onnx.ts) maps every weight one to one.
 *
 * Shape (He et al. 2016's CIFAR ResNets, scaled down for a 2-core laptop):
 *   stem     conv3×3(C→w₀, stride s₀, pad 1) – BN – ReLU
 *   stage k  `blocks[k]` basic blocks of width w_k; the first of stages k ≥ 1 has stride 2
 *            basic block: conv3×3–BN–ReLU–conv3×3–BN, + shortcut (identity, or conv1×1
 *            stride s – BN when the shape changes), then ReLU
 *   head     global average pool → features (D = last width) → linear → logits
 *
 * All 3×3 convolutions use PyTorch's symmetric padding 1 (not TF's "same", which pads
 * asymmetrically for stride 2), so the exported Conv nodes have pads [1,1,1,1] whatever the
 * input size. Layout is NHWC inside tfjs; the ONNX model takes NCHW.
 *
 * BatchNorm follows torch's `BatchNorm2d`: biased batch variance to normalise, running stats
 * with momentum 0.1 from the unbiased variance, ε = 1e-5; its backward pass is the closed
 * form (a custom gradient: 3 reductions instead of autodiff through the moments).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../tuning/rng';
import { NmlabError } from '../../shared/errors';

export const CNN_BN_EPS = 1e-5;
export const CNN_BN_MOMENTUM = 0.1;

/** Architecture of an NMLab CNN: JSON-serialisable, recorded in backbone.json. */
export interface CnnSpec {
  /** Input [channels, height, width]. */
  inputSize: [number, number, number];
  /** Stem width w₀ and stride s₀. */
  stemWidth: number;
  stemStride: number;
  /** Width of each stage; its length is the number of stages. */
  widths: number[];
  /** Basic blocks per stage. */
  blocks: number[];
  numClasses: number;
}

/** The default backbone: ~75k parameters, D = 64; sized for the 10-minute demo (see bench). */
export const DEFAULT_CNN: Omit<CnnSpec, 'numClasses' | 'inputSize'> = {
  stemWidth: 16,
  stemStride: 2,
  widths: [16, 32, 64],
  blocks: [1, 1, 1],
};

/** One convolution (+ BN) as the export sees it. */
export interface ConvLayer {
  name: string;
  kernel: number;
  stride: number;
  pad: number;
  inChannels: number;
  outChannels: number;
}

/** A basic block: two 3×3 conv-BN layers, and a 1×1 conv-BN shortcut when needed. */
export interface BlockLayout {
  name: string;
  conv1: ConvLayer;
  conv2: ConvLayer;
  shortcut: ConvLayer | null;
}

/** The static layout of a spec (names match the variables: `<conv>.weight`, `<conv>.bn.gamma`, ...). */
export interface CnnLayout {
  stem: ConvLayer;
  blocks: BlockLayout[];
  featureDim: number;
}

export function checkCnnSpec(spec: CnnSpec): void {
  const ok =
    spec.inputSize.length === 3 &&
    spec.inputSize.every((v) => Number.isInteger(v) && v > 0) &&
    spec.widths.length >= 1 &&
    spec.widths.length === spec.blocks.length &&
    spec.widths.every((w) => Number.isInteger(w) && w > 0) &&
    spec.blocks.every((b) => Number.isInteger(b) && b >= 1) &&
    Number.isInteger(spec.stemWidth) &&
    spec.stemWidth > 0 &&
    (spec.stemStride === 1 || spec.stemStride === 2) &&
    Number.isInteger(spec.numClasses) &&
    spec.numClasses >= 2;
  if (!ok) throw new NmlabError('BAD_REQUEST', `CNN spec ${JSON.stringify(spec)} is invalid: widths and blocks need one positive integer per stage, stemStride 1 or 2, numClasses ≥ 2`);
}

export function cnnLayout(spec: CnnSpec): CnnLayout {
  checkCnnSpec(spec);
  const conv = (name: string, kernel: number, stride: number, inChannels: number, outChannels: number): ConvLayer => ({ name, kernel, stride, pad: kernel === 3 ? 1 : 0, inChannels, outChannels });
  const stem = conv('stem', 3, spec.stemStride, spec.inputSize[0], spec.stemWidth);
  const blocks: BlockLayout[] = [];
  let c = spec.stemWidth;
  spec.widths.forEach((w, k) => {
    for (let b = 0; b < spec.blocks[k]; b++) {
      const stride = k > 0 && b === 0 ? 2 : 1;
      const name = `stage${k + 1}.${b}`;
      blocks.push({
        name,
        conv1: conv(`${name}.conv1`, 3, stride, c, w),
        conv2: conv(`${name}.conv2`, 3, 1, w, w),
        shortcut: stride !== 1 || c !== w ? conv(`${name}.shortcut`, 1, stride, c, w) : null,
      });
      c = w;
    }
  });
  return { stem, blocks, featureDim: c };
}

/** Batch statistics of one BN layer from a training forward pass (kept; freed by the update). */
export interface BnBatchStats {
  name: string;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  count: number;
}

/**
 * Per-channel mean of an NHWC tensor as one average pool over the whole [N·H, W] plane. On
 * wasm this is a single XNNPACK pass; `tf.mean` over the leading axes transposes the tensor
 * first, and a [1,M]·[M,C] matMul repacks its operand every call (both ~10× slower).
 */
export function channelMean(x: tf.Tensor4D): tf.Tensor1D {
  const [n, h, w, c] = x.shape;
  const pooled = tf.avgPool(tf.reshape(x, [1, n * h, w, c]) as tf.Tensor4D, [n * h, w], 1, 'valid');
  return tf.reshape(pooled, [c]) as tf.Tensor1D;
}

/**
 * y = x·a + b per channel (and ReLU), as a fused 1×1 depthwise convolution: one XNNPACK pass,
 * where broadcasting mul/add take one slow pass each and wasm's FusedBatchNorm is slower still.
 */
export function channelAffine(x: tf.Tensor4D, a: tf.Tensor1D, b?: tf.Tensor1D, relu = false): tf.Tensor4D {
  const c = x.shape[3];
  return tf.fused.depthwiseConv2d({ x, filter: tf.reshape(a, [1, 1, c, 1]) as tf.Tensor4D, strides: 1, pad: 'valid', bias: b, activation: relu ? 'relu' : 'linear' });
}

/**
 * Training-mode BatchNorm (optionally followed by ReLU) over N, H, W with the closed-form
 * backward (Ioffe & Szegedy 2015, §3). With c = x − μ, σ⁻¹ = 1/√(var + ε), a = γσ⁻¹:
 *   y = a·c + β;   dβ = Σ dy;   dγ = σ⁻¹·Σ dy·c;   dx = a·dy − (a·σ⁻¹·dγ/M)·c − a·dβ/M
 * (dy masked by y > 0 first when ReLU is fused). Every per-channel step is a fused 1×1
 * depthwise convolution or a full-plane average pool (see above).
 */
function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, relu: boolean, onStats: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void): tf.Tensor4D {
  const count = x.size / x.shape[3];
  const f = tf.customGrad(((xIn: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const x4 = xIn as tf.Tensor4D;
    const mean = channelMean(x4);
    const centred = channelAffine(x4, tf.onesLike(mean), tf.neg(mean));
    const variance = channelMean(tf.square(centred) as tf.Tensor4D);
    onStats(tf.keep(mean.clone()), tf.keep(variance.clone()));
    const invStd = tf.rsqrt(tf.add(variance, CNN_BN_EPS)) as tf.Tensor1D;
    const y = channelAffine(centred, tf.mul(g, invStd) as tf.Tensor1D, b as tf.Tensor1D, relu);
    save(relu ? [centred, invStd, g, y] : [centred, invStd, g]);
    return {
      value: y,
      gradFunc: (dyIn: tf.Tensor, saved: tf.Tensor[]) => {
        const [c, inv, gm, out] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D | undefined];
        const dy = (out ? tf.mul(dyIn, tf.step(out)) : dyIn) as tf.Tensor4D;
        const dBeta = tf.mul(channelMean(dy), count) as tf.Tensor1D;
        const dGamma = tf.mul(tf.mul(channelMean(tf.mul(dy, c) as tf.Tensor4D), count), inv) as tf.Tensor1D;
        const a = tf.mul(gm, inv) as tf.Tensor1D;
        const k = tf.neg(tf.div(tf.mul(tf.mul(a, inv), dGamma), count)) as tf.Tensor1D;
        const shift = tf.neg(tf.div(tf.mul(a, dBeta), count)) as tf.Tensor1D;
        const dx = tf.add(channelAffine(dy, a, shift), channelAffine(c, k));
        return [dx, dGamma, dBeta];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor4D;
  return f(x, gamma, beta);
}

/** Kaiming-normal (fan_out, ReLU gain) as torchvision's ResNet initialises its convolutions. */
function kaimingConv(rng: Rng, k: number, cin: number, cout: number): tf.Tensor4D {
  const std = Math.sqrt(2 / (k * k * cout));
  const data = new Float32Array(k * k * cin * cout);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return tf.tensor4d(data, [k, k, cin, cout]);
}

function uniform(rng: Rng, shape: number[], bound: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
  return tf.tensor(data, shape);
}

/** A backbone's trainable variables and BN running statistics, by name. */
export class CnnModel {
  readonly layout: CnnLayout;
  /** Trainable: `<conv>.weight` [k,k,cin,cout], `<conv>.bn.gamma|beta`, `head.weight` [D,K], `head.bias`. */
  readonly vars: Record<string, tf.Variable> = {};
  /** Not trainable: `<conv>.bn.running_mean|running_var`. */
  readonly buffers: Record<string, tf.Variable> = {};

  constructor(
    readonly spec: CnnSpec,
    seed: number,
  ) {
    this.layout = cnnLayout(spec);
    const rng = new Rng(seed);
    // Inside a tidy: a variable keeps its own reference, the initial tensors are freed.
    tf.tidy(() => {
      for (const layer of this.convLayers()) {
        this.vars[`${layer.name}.weight`] = tf.variable(kaimingConv(rng, layer.kernel, layer.inChannels, layer.outChannels));
        this.vars[`${layer.name}.bn.gamma`] = tf.variable(tf.ones([layer.outChannels]));
        this.vars[`${layer.name}.bn.beta`] = tf.variable(tf.zeros([layer.outChannels]));
        this.buffers[`${layer.name}.bn.running_mean`] = tf.variable(tf.zeros([layer.outChannels]), false);
        this.buffers[`${layer.name}.bn.running_var`] = tf.variable(tf.ones([layer.outChannels]), false);
      }
      // torch nn.Linear default: U(±1/√fan_in) for weight and bias.
      const d = this.layout.featureDim;
      const bound = 1 / Math.sqrt(d);
      this.vars['head.weight'] = tf.variable(uniform(rng, [d, spec.numClasses], bound));
      this.vars['head.bias'] = tf.variable(uniform(rng, [spec.numClasses], bound));
    });
  }

  /** Every conv layer in forward order. */
  convLayers(): ConvLayer[] {
    const out = [this.layout.stem];
    for (const b of this.layout.blocks) {
      out.push(b.conv1, b.conv2);
      if (b.shortcut) out.push(b.shortcut);
    }
    return out;
  }

  get featureDim(): number {
    return this.layout.featureDim;
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    return Object.values(this.vars).reduce((a, v) => a + v.size, 0);
  }

  private convBn(x: tf.Tensor4D, layer: ConvLayer, training: boolean, relu: boolean, stats?: BnBatchStats[]): tf.Tensor4D {
    const w = this.vars[`${layer.name}.weight`] as tf.Tensor4D;
    const p = layer.pad;
    const y = tf.conv2d(x, w, layer.stride, p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]]);
    const gamma = this.vars[`${layer.name}.bn.gamma`] as tf.Tensor1D;
    const beta = this.vars[`${layer.name}.bn.beta`] as tf.Tensor1D;
    if (training) {
      const count = y.size / layer.outChannels;
      return batchNormTrain(y, gamma, beta, relu, (mean, variance) => {
        if (stats) stats.push({ name: layer.name, mean, variance, count });
        else tf.dispose([mean, variance]);
      });
    }
    // Eval mode: y = γ(x − μ_run)/√(σ²_run + ε) + β as one per-channel affine.
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(this.buffers[`${layer.name}.bn.running_var`], CNN_BN_EPS))) as tf.Tensor1D;
    const shift = tf.sub(beta, tf.mul(this.buffers[`${layer.name}.bn.running_mean`], scale)) as tf.Tensor1D;
    return channelAffine(y, scale, shift, relu);
  }

  /** Features [N, D] of NHWC images [N, H, W, C] (already normalised). */
  features(x: tf.Tensor4D, training: boolean, stats?: BnBatchStats[]): tf.Tensor2D {
    let h = this.convBn(x, this.layout.stem, training, true, stats);
    for (const b of this.layout.blocks) {
      const y1 = this.convBn(h, b.conv1, training, true, stats);
      const y2 = this.convBn(y1, b.conv2, training, false, stats);
      const sc = b.shortcut ? this.convBn(h, b.shortcut, training, false, stats) : h;
      h = tf.relu(tf.add(y2, sc)) as tf.Tensor4D;
    }
    return tf.mean(h, [1, 2]) as tf.Tensor2D;
  }

  /** Logits [N, K] from features. */
  head(f: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(f, this.vars['head.weight'] as tf.Tensor2D), this.vars['head.bias']) as tf.Tensor2D;
  }

  /** torch's running-stat update r ← (1−m)·r + m·batch (unbiased variance); frees `stats`. */
  updateRunningStats(stats: BnBatchStats[]): void {
    for (const s of stats) {
      const rm = this.buffers[`${s.name}.bn.running_mean`];
      const rv = this.buffers[`${s.name}.bn.running_var`];
      tf.tidy(() => {
        rm.assign(tf.add(tf.mul(rm, 1 - CNN_BN_MOMENTUM), tf.mul(s.mean, CNN_BN_MOMENTUM)));
        const unbiased = tf.mul(s.variance, s.count / Math.max(1, s.count - 1));
        rv.assign(tf.add(tf.mul(rv, 1 - CNN_BN_MOMENTUM), tf.mul(unbiased, CNN_BN_MOMENTUM)));
      });
      s.mean.dispose();
      s.variance.dispose();
    }
  }

  /**
   * Overwrite tensors by name (weights as this model stores them: conv [k,k,cin,cout]).
   * Every name must exist and every length match; names not given keep their values.
   */
  assign(values: Record<string, Float32Array>): void {
    const all = this.namedTensors();
    for (const [name, data] of Object.entries(values)) {
      const v = all[name];
      if (!v) throw new NmlabError('BAD_FILE', `weights name '${name}' is not a tensor of this CNN (${this.spec.widths.join('/')}); were they saved from another architecture?`);
      if (v.size !== data.length) throw new NmlabError('BAD_FILE', `weights '${name}' have ${data.length} values, the CNN expects ${v.size} (shape ${v.shape.join('×')})`);
      tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
    }
  }

  /** Every tensor by name (trainable and buffers), for saving and export. */
  namedTensors(): Record<string, tf.Variable> {
    return { ...this.vars, ...this.buffers };
  }

  dispose(): void {
    for (const v of Object.values(this.namedTensors())) v.dispose();
  }
}
