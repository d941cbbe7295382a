/**
 * Supervised pre-training of an NMLab CNN on (possibly noisy) labels (DESIGN §4; the paper's
 * §3 setting: the backbone is pre-trained on labels with noise ratio γ, then frozen).
 *
 * Mini-batch training with seeded initialisation and shuffling; cross-entropy (optionally
 * label-smoothed) or one-vs-all binary cross-entropy; AdamW (torch's update, from the tuning
 * module) or SGD with Nesterov momentum and L2 weight decay (torch's SGD); a per-step cosine
 * schedule with linear warm-up; BatchNorm running statistics
 * updated after every step. Weight decay applies to conv and linear weights only, not to BN
 * parameters or biases (the usual ResNet recipe).
 *
 * Progress arrives through a callback; an AbortSignal stops training between steps (the
 * model keeps the weights of the last finished step and the result says where it stopped).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../tuning/adamw';
import { learningRateAt } from '../tuning/schedule';
import { Rng } from '../tuning/rng';
import { NmlabError } from '../../shared/errors';
import { CnnModel, DEFAULT_CNN, type BnBatchStats, type CnnSpec } from './cnn';
import { batchPixels } from './batches';

/** Fashion-MNIST's pixel mean and std in [0,1] units (over its 60k training images). */
export const FASHION_MNIST_MEAN = 0.286;
export const FASHION_MNIST_STD = 0.353;

/** Images as uint8 pixels, N × H × W × C in C order (as the IDX reader returns them). */
export interface ImageSet {
  pixels: Uint8Array;
  count: number;
  /** [channels, height, width]. */
  size: [number, number, number];
  labels: Int32Array;
}

export interface PretrainHyper {
  epochs: number;
  batchSize: number;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  weightDecay: number;
  /** SGD only. */
  momentum: number;
  warmupEpochs: number;
  loss: 'ce' | 'bce';
  labelSmoothing: number;
  /** Random horizontal flips of half of each batch. */
  flip: boolean;
}

export const DEFAULT_HYPER: PretrainHyper = {
  epochs: 6,
  batchSize: 128,
  optimizer: 'adamw',
  lr: 0.004,
  weightDecay: 0.05,
  momentum: 0.9,
  warmupEpochs: 0.5,
  loss: 'ce',
  labelSmoothing: 0,
  flip: true,
};

export interface PretrainStepEvent {
  kind: 'step';
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  loss: number;
  lr: number;
}

export interface PretrainEpochEvent {
  kind: 'epoch';
  epoch: number;
  epochs: number;
  loss: number;
  /** Accuracy on the (noisy) training labels, from the training-mode forward passes. */
  trainAcc: number;
  seconds: number;
  imagesPerSecond: number;
}

export type PretrainEvent = PretrainStepEvent | PretrainEpochEvent;

export interface PretrainOptions {
  train: ImageSet;
  numClasses: number;
  hyper?: Partial<PretrainHyper>;
  arch?: Partial<Omit<CnnSpec, 'numClasses' | 'inputSize'>>;
  seed: number;
  /** Per-channel normalisation in [0,1] units; Fashion-MNIST's by default. */
  mean?: number[];
  std?: number[];
  onEvent?: (ev: PretrainEvent) => void;
  signal?: AbortSignal;
  /** Report a step event every `stepEvery` steps (default 10). */
  stepEvery?: number;
  /** Resume from these weights instead of a fresh initialisation. */
  init?: CnnModel;
  /**
   * Where the steps run: 'ort' (onnxruntime: forward, backward and the optimiser in one
   * graph, ./train-ort.ts), 'tfjs' (the tfjs backend with NMLab's kernels), or 'auto'
   * (default; NMLAB_PRETRAIN_ENGINE overrides): ORT where it loads and the loss is 'ce'.
   */
  engine?: PretrainEngine;
}

export type PretrainEngine = 'auto' | 'ort' | 'tfjs';

/** One training step on a batch; the same interface for every engine. */
export interface StepEngine {
  /** 'onnxruntime' (', NCHWc convolutions' where they ran on those kernels) or the tfjs backend's name. */
  readonly name: string;
  step(idx: Int32Array, flipMask: Uint8Array | undefined, labels: Int32Array, lr: number): Promise<{ loss: number; hits: number }>;
  /** Writes the trained weights into the model (a no-op where they live there). */
  finish(): void;
  dispose(): void;
}

export interface StepEngineContext {
  model: CnnModel;
  set: ImageSet;
  hyper: PretrainHyper;
  numClasses: number;
  mean: number[];
  std: number[];
  /** Rows per step (the batch size, or the whole set when it is smaller). */
  rows: number;
}

export interface PretrainResult {
  model: CnnModel;
  hyper: PretrainHyper;
  epochsDone: number;
  stepsDone: number;
  /** True when the signal stopped training early. */
  aborted: boolean;
  history: PretrainEpochEvent[];
  seconds: number;
  normalization: { mean: number[]; std: number[] };
  /** Where the steps ran: 'onnxruntime' (', NCHWc convolutions' where they ran on those kernels) or the tfjs backend's name. */
  engine: string;
}

/** uint8 pixels of `idx` → normalised NHWC float32 batch. */
export function makeBatch(set: ImageSet, idx: ArrayLike<number>, mean: number[], std: number[], flipMask?: Uint8Array): tf.Tensor4D {
  const [c, h, w] = set.size;
  return tf.tensor4d(batchPixels(set, idx, mean, std, flipMask, 'nhwc'), [idx.length, h, w, c]);
}

/** The pre-training loss of a batch: mean CE (label-smoothed), or Σ-over-classes BCE averaged over the batch. */
export function pretrainLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, hyper: Pick<PretrainHyper, 'loss' | 'labelSmoothing'>, k: number): tf.Scalar {
  const onehot = tf.cast(tf.oneHot(labels, k), 'float32');
  const eps = hyper.labelSmoothing;
  const target = eps > 0 ? tf.add(tf.mul(onehot, 1 - eps), eps / k) : onehot;
  if (hyper.loss === 'bce') {
    // Mean over the batch of Σ_classes BCE-with-logits (torch BCEWithLogitsLoss, reduction sum/N).
    const z = logits;
    const perElem = tf.add(tf.sub(tf.relu(z), tf.mul(z, target)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
    return tf.div(tf.sum(perElem), logits.shape[0]) as tf.Scalar;
  }
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), target), 1))) as tf.Scalar;
}

function isDecayed(name: string): boolean {
  return name.endsWith('.weight');
}

/** SGD with Nesterov momentum and L2 weight decay, torch.optim.SGD(nesterov=True). */
class NesterovSgd {
  private readonly buf = new Map<string, tf.Variable>();
  constructor(
    private readonly momentum: number,
    private readonly weightDecay: number,
  ) {}

  step(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    for (const [name, p] of Object.entries(vars)) {
      const g0 = grads[name];
      if (!g0) continue;
      let b = this.buf.get(name);
      if (!b) {
        b = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
        this.buf.set(name, b);
      }
      const bb = b;
      tf.tidy(() => {
        const g = isDecayed(name) && this.weightDecay > 0 ? tf.add(g0, tf.mul(p, this.weightDecay)) : g0;
        const b1 = tf.add(tf.mul(bb, this.momentum), g);
        bb.assign(b1);
        p.assign(tf.sub(p, tf.mul(tf.add(g, tf.mul(b1, this.momentum)), lr)));
      });
    }
  }

  dispose(): void {
    for (const b of this.buf.values()) b.dispose();
  }
}

/** Adam moments for everything; decoupled decay only on weights (two AdamW groups, as torch param groups). */
class GroupedAdamW {
  private readonly decayed: AdamW;
  private readonly plain: AdamW;
  constructor(weightDecay: number) {
    this.decayed = new AdamW({ weightDecay });
    this.plain = new AdamW({ weightDecay: 0 });
  }

  step(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    const a: Record<string, tf.Variable> = {};
    const b: Record<string, tf.Variable> = {};
    for (const [name, v] of Object.entries(vars)) (isDecayed(name) ? a : b)[name] = v;
    this.decayed.step(a, grads, lr);
    this.plain.step(b, grads, lr);
  }

  dispose(): void {
    this.decayed.dispose();
    this.plain.dispose();
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The tfjs engine: tfjs autodiff of ./cnn.ts, the optimiser of ./train.ts. */
function tfjsEngine(c: StepEngineContext): StepEngine {
  const { model, set, hyper, mean, std, numClasses } = c;
  const optimizer = hyper.optimizer === 'sgd' ? new NesterovSgd(hyper.momentum, hyper.weightDecay) : new GroupedAdamW(hyper.weightDecay);
  const varNames = Object.keys(model.vars);
  const varList = varNames.map((n) => model.vars[n]);
  return {
    name: tf.getBackend(),
    async step(idx, flipMask, labels, lr) {
      const stats: BnBatchStats[] = [];
      const { lossValue, hits } = tf.tidy(() => {
        const x = makeBatch(set, idx, mean, std, flipMask);
        const y = tf.tensor1d(labels, 'int32');
        const kept: tf.Tensor[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.head(model.features(x, true, stats));
          // Not on the path to the loss, so not differentiated; kept past variableGrads' tidy.
          kept.push(tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32'))));
          return pretrainLoss(logits, y, hyper, numClasses);
        }, varList);
        const named: Record<string, tf.Tensor> = {};
        varList.forEach((v, i) => (named[varNames[i]] = grads[v.name]));
        optimizer.step(model.vars, named, lr);
        return { lossValue: tf.keep(value), hits: kept[0] };
      });
      model.updateRunningStats(stats);
      const loss = (await lossValue.data())[0];
      const h = (await hits.data())[0];
      tf.dispose([lossValue, hits]);
      return { loss, hits: h };
    },
    finish() {},
    dispose() {
      optimizer.dispose();
    },
  };
}

/** The engine a run uses: the option, else NMLAB_PRETRAIN_ENGINE, else 'auto'. */
export function pretrainEngineChoice(opt: PretrainEngine | undefined, hyper: Pick<PretrainHyper, 'loss'>): 'ort' | 'tfjs' {
  const env = process.env.NMLAB_PRETRAIN_ENGINE;
  const want = opt ?? (env === 'ort' || env === 'tfjs' || env === 'auto' ? env : 'auto');
  if (want === 'ort' && hyper.loss !== 'ce') throw new NmlabError('UNSUPPORTED', `pre-training on onnxruntime supports the 'ce' loss only (got '${hyper.loss}'); use engine 'tfjs' for '${hyper.loss}'`);
  if (want === 'auto') return hyper.loss === 'ce' ? 'ort' : 'tfjs';
  return want;
}

/** Train a backbone. Resolves when all epochs ran or the signal aborted. */
export async function pretrainCnn(opts: PretrainOptions): Promise<PretrainResult> {
  const hyper: PretrainHyper = { ...DEFAULT_HYPER, ...opts.hyper };
  const set = opts.train;
  const [c] = set.size;
  if (set.labels.length !== set.count) throw new NmlabError('BAD_REQUEST', `training set has ${set.count} images but ${set.labels.length} labels`);
  if (set.pixels.length !== set.count * set.size[0] * set.size[1] * set.size[2]) throw new NmlabError('BAD_REQUEST', `training set pixel buffer has ${set.pixels.length} bytes, expected ${set.count}×${set.size.join('×')}`);
  if (!(hyper.epochs >= 1) || !(hyper.batchSize >= 2)) throw new NmlabError('BAD_REQUEST', `epochs must be ≥ 1 and batchSize ≥ 2 (got ${hyper.epochs}, ${hyper.batchSize})`);
  const mean = opts.mean ?? new Array<number>(c).fill(FASHION_MNIST_MEAN);
  const std = opts.std ?? new Array<number>(c).fill(FASHION_MNIST_STD);
  const spec: CnnSpec = { ...DEFAULT_CNN, ...opts.arch, inputSize: set.size, numClasses: opts.numClasses };
  const model = opts.init ?? new CnnModel(spec, opts.seed);
  const rng = new Rng(opts.seed ^ 0x5eed);
  // Drop the last incomplete batch (BN statistics of a tiny batch are noise).
  const stepsPerEpoch = Math.max(1, Math.floor(set.count / hyper.batchSize));
  const rows = Math.min(hyper.batchSize, set.count);
  const ctx: StepEngineContext = { model, set, hyper, numClasses: opts.numClasses, mean, std, rows };
  let engine: StepEngine;
  if (pretrainEngineChoice(opts.engine, hyper) === 'ort') {
    try {
      engine = await (await import('./train-ort')).ortEngine(ctx);
    } catch (err) {
      // 'auto' falls back to tfjs where onnxruntime cannot load; a forced 'ort' reports why.
      if ((opts.engine ?? process.env.NMLAB_PRETRAIN_ENGINE) === 'ort') throw err;
      engine = tfjsEngine(ctx);
    }
  } else engine = tfjsEngine(ctx);
  const totalSteps = stepsPerEpoch * hyper.epochs;
  const schedule = { kind: 'cosine' as const, baseLr: hyper.lr, totalSteps, warmupSteps: Math.round(hyper.warmupEpochs * stepsPerEpoch) };
  const stepEvery = opts.stepEvery ?? 10;
  const history: PretrainEpochEvent[] = [];
  const t0 = performance.now();
  let step = 0;
  let epochsDone = 0;
  let aborted = false;
  try {
    for (let epoch = 0; epoch < hyper.epochs && !aborted; epoch++) {
      const te = performance.now();
      const order = new Int32Array(set.count);
      for (let i = 0; i < set.count; i++) order[i] = i;
      rng.shuffle(order);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        if (opts.signal?.aborted) {
          aborted = true;
          break;
        }
        const idx = order.subarray(s * hyper.batchSize, (s + 1) * hyper.batchSize);
        const flipMask = hyper.flip ? Uint8Array.from(idx, () => (rng.next() < 0.5 ? 1 : 0)) : undefined;
        const lr = learningRateAt(schedule, step);
        const labels = Int32Array.from(idx, (i) => set.labels[i]);
        const { loss: lv, hits: hv } = await engine.step(idx, flipMask, labels, lr);
        if (!Number.isFinite(lv)) throw new NmlabError('NUMERIC', `pre-training loss became ${lv} at epoch ${epoch + 1}, step ${s + 1}; lower the learning rate (now ${hyper.lr})`);
        lossSum += lv * idx.length;
        correct += hv;
        seen += idx.length;
        step++;
        if (opts.onEvent && (s % stepEvery === 0 || s === stepsPerEpoch - 1)) opts.onEvent({ kind: 'step', epoch, step: s, stepsPerEpoch, loss: lv, lr });
        // Let abort signals and worker messages through.
        if (s % 4 === 3) await yieldToEventLoop();
      }
      if (seen === 0) break;
      const seconds = (performance.now() - te) / 1000;
      const ev: PretrainEpochEvent = { kind: 'epoch', epoch, epochs: hyper.epochs, loss: lossSum / seen, trainAcc: correct / seen, seconds, imagesPerSecond: seen / seconds };
      if (!aborted) {
        history.push(ev);
        epochsDone++;
        opts.onEvent?.(ev);
      }
    }
  } finally {
    engine.finish();
    engine.dispose();
  }
  return { model, hyper, epochsDone, stepsDone: step, aborted, history, seconds: (performance.now() - t0) / 1000, normalization: { mean, std }, engine: engine.name };
}

/** Eval-mode features [N, D] of a set, in batches. */
export async function extractCnnFeatures(model: CnnModel, set: ImageSet, norm: { mean: number[]; std: number[] }, batchSize = 500): Promise<Float32Array> {
  const d = model.featureDim;
  const out = new Float32Array(set.count * d);
  for (let start = 0; start < set.count; start += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, set.count - start) }, (_, i) => start + i);
    const f = tf.tidy(() => model.features(makeBatch(set, idx, norm.mean, norm.std), false));
    out.set(await f.data(), start * d);
    f.dispose();
  }
  return out;
}

/** Eval-mode predicted classes of a set. */
export async function predictCnn(model: CnnModel, set: ImageSet, norm: { mean: number[]; std: number[] }, batchSize = 500): Promise<Int32Array> {
  const out = new Int32Array(set.count);
  for (let start = 0; start < set.count; start += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, set.count - start) }, (_, i) => start + i);
    const p = tf.tidy(() => tf.argMax(model.head(model.features(makeBatch(set, idx, norm.mean, norm.std), false)), 1));
    out.set(await p.data(), start);
    p.dispose();
  }
  return out;
}

/** Fraction of `pred` equal to `labels`. */
export function accuracyOf(pred: Int32Array, labels: Int32Array): number {
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) hit++;
  return pred.length ? hit / pred.length : 0;
}
