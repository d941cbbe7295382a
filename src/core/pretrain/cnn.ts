/**
 * NMLab's small ResNet-style backbone for noisy pre-training (DESIGN §4 "Pre-training in
 * NMLab"), written with explicit tfjs-core variables so that the ONNX export
 * (src/core/onnx/export-cnn.ts) maps every weight one to one.
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
 * Per-channel sums of x viewed as [M, C], as a [1, M]·[M, C] product: on wasm this is one
 * XNNPACK GEMM, where `tf.sum` over the leading axes first transposes the whole tensor.
 */
function channelSum(x2: tf.Tensor2D, ones: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.matMul(ones, x2), [x2.shape[1]]) as tf.Tensor1D;
}

/**
 * Training-mode BatchNorm over all axes but the last, with the closed-form backward
 * dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)) (Ioffe & Szegedy 2015, §3): 2 reductions and
 * a few element-wise passes, instead of autodiff through the moments.
 */
function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, onStats: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void): tf.Tensor {
  const c = x.shape[x.shape.length - 1];
  const count = x.size / c;
  const f = tf.customGrad(((xIn: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const ones = tf.ones([1, count]) as tf.Tensor2D;
    const x2 = tf.reshape(xIn, [count, c]) as tf.Tensor2D;
    const mean = tf.div(channelSum(x2, ones), count) as tf.Tensor1D;
    const variance = tf.div(channelSum(tf.squaredDifference(x2, mean) as tf.Tensor2D, ones), count) as tf.Tensor1D;
    onStats(tf.keep(mean.clone()), tf.keep(variance.clone()));
    const y = tf.batchNorm(xIn, mean, variance, b as tf.Tensor1D, g as tf.Tensor1D, CNN_BN_EPS);
    save([xIn, mean, variance, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, v, gm] = saved;
        const onesB = tf.ones([1, count]) as tf.Tensor2D;
        // x̂ in one fused pass (FusedBatchNorm with unit scale, zero offset).
        const xhat = tf.batchNorm(xs, m, v, undefined, undefined, CNN_BN_EPS);
        const dy2 = tf.reshape(dy, [count, c]) as tf.Tensor2D;
        const dBeta = channelSum(dy2, onesB);
        const dGamma = channelSum(tf.reshape(tf.mul(dy, xhat), [count, c]) as tf.Tensor2D, onesB);
        const a = tf.mul(gm, tf.rsqrt(tf.add(v, CNN_BN_EPS)));
        // dx = a·dy − (a·dGamma/M)·x̂ − a·dBeta/M
        const dx = tf.sub(tf.sub(tf.mul(dy, a), tf.mul(xhat, tf.mul(a, tf.div(dGamma, count)))), tf.mul(a, tf.div(dBeta, count)));
        return [dx, dGamma, dBeta];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
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

  private convBn(x: tf.Tensor4D, layer: ConvLayer, training: boolean, stats?: BnBatchStats[]): tf.Tensor4D {
    const w = this.vars[`${layer.name}.weight`] as tf.Tensor4D;
    const p = layer.pad;
    const y = tf.conv2d(x, w, layer.stride, p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]]);
    const gamma = this.vars[`${layer.name}.bn.gamma`] as tf.Tensor1D;
    const beta = this.vars[`${layer.name}.bn.beta`] as tf.Tensor1D;
    if (training) {
      const count = y.size / layer.outChannels;
      return batchNormTrain(y, gamma, beta, (mean, variance) => {
        if (stats) stats.push({ name: layer.name, mean, variance, count });
        else tf.dispose([mean, variance]);
      }) as tf.Tensor4D;
    }
    const mean = this.buffers[`${layer.name}.bn.running_mean`] as tf.Tensor1D;
    const variance = this.buffers[`${layer.name}.bn.running_var`] as tf.Tensor1D;
    return tf.batchNorm(y, mean, variance, beta, gamma, CNN_BN_EPS);
  }

  /** Features [N, D] of NHWC images [N, H, W, C] (already normalised). */
  features(x: tf.Tensor4D, training: boolean, stats?: BnBatchStats[]): tf.Tensor2D {
    let h = tf.relu(this.convBn(x, this.layout.stem, training, stats));
    for (const b of this.layout.blocks) {
      const y1 = tf.relu(this.convBn(h, b.conv1, training, stats));
      const y2 = this.convBn(y1, b.conv2, training, stats);
      const sc = b.shortcut ? this.convBn(h, b.shortcut, training, stats) : h;
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
