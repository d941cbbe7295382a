/**
 * Black-box tuning on features (DESIGN §4, paper §6): linear probing (LP), MLP tuning and
 * NMTune, as estimators (STYLE.md convention 5). The constructor only stores JSON-serialisable
 * parameters; `fit()` trains and returns `this`; `evaluate()` returns metrics; `transform()`
 * gives the tuned features Z; using a model before `fit()` throws NOT_FITTED.
 *
 * One training loop serves all three: seeded stratified fraction of the training set, seeded
 * shuffled mini-batches, AdamW with a per-step schedule and warm-up. LP trains a linear head
 * on F; MLP trains head∘h; NMTune adds the regularisers of eq. 4–6 on Z = h(F) (eq. 7). With
 * the `reference` preset each batch is a weak and a strong feature-space view, concatenated
 * (objective.ts). Parameters: `TuneParams` (src/shared/contract/tuning.ts). Two engines train
 * the same step: tfjs autodiff and onnxruntime with a hand-written backward (ortGraphs.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { NmlabError } from '../../shared/errors';
import { initTfBackend } from '../tf/backend';
import { chooseProviders, loadOrt, ortThreads } from '../onnx/providers';
import { OrtMlpStep, mlpParamNames, type MlpArrays, type MlpParamName } from './ortStep';
import { AdamW, ArrayAdamW } from './adamw';
import { checkFeatureSet, epochBatches, gatherRows, stratifiedFraction, type FeatureSet } from './data';
import { objective } from './objective';
import { accuracy, macroF1 } from './metrics';
import { Mlp, kaimingHeadInit, linearInit, BN_MOMENTUM, type BatchStats } from './mlp';
import { resolveTuneParams } from './params';
import type { TuneAugment, TuneMethodName, TuneOverrides, TuneParams, TuneTerms } from '../../shared/contract/tuning';
import { Rng } from './rng';
import { learningRateAt } from './schedule';
import { zSpectrum, type ZSpectrum } from './zSpectrum';

/** The contract's `TuneMethodName`, under the name the demo and the bench import. */
export type TuneMethod = TuneMethodName;

/**
 * One optimisation step of an engine on `x` (rows × D; for the reference preset the weak
 * view's rows then the strong view's) with one label per row: returns [total, ce, (mse, cov,
 * svd)]. `sync()` makes the tfjs model hold the trained parameters (evaluation reads it).
 */
interface StepRunner {
  step(x: Float32Array, labels: Int32Array, rows: number, lr: number): Promise<number[]>;
  sync(): void;
  finish(): Promise<void>;
}

/** Loss terms of one step (NMTune terms are absent for LP and MLP). */
export interface StepEvent {
  epoch: number;
  step: number;
  totalSteps: number;
  lr: number;
  ce: number;
  mse?: number;
  cov?: number;
  svd?: number;
  total: number;
}

export interface EpochEvent {
  epoch: number;
  epochs: number;
  meanLoss: number;
  seconds: number;
}

export interface FitOptions {
  signal?: AbortSignal;
  onStep?: (e: StepEvent) => void;
  onEpoch?: (e: EpochEvent) => void;
}

/** Where training stopped: after the last step, or at a cancellation. */
export interface StopInfo {
  reason: 'completed' | 'aborted';
  /** Epochs fully completed. */
  epochsDone: number;
  /** Optimisation steps taken. */
  steps: number;
  totalSteps: number;
}

export interface EvalMetrics {
  accuracy: number;
  macroF1: number;
  rows: number;
  /** Spectrum of the tuned features Z of the evaluated set (for LP, Z = F), reference preprocessing. */
  z: ZSpectrum;
  /** The same without preprocessing. */
  zRaw: ZSpectrum;
}

function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The shared estimator; use {@link LinearProbe}, {@link MlpTuner} or {@link NMTune}. */
export class FeatureTuner {
  protected params: TuneParams;
  /** Fitted state (trailing underscore: set by fit, as scikit-learn does). */
  protected mlp_: Mlp | null = null;
  protected head_: { w: tf.Variable; b: tf.Variable } | null = null;
  protected numClasses_ = 0;
  protected dim_ = 0;
  stopped_: StopInfo | null = null;
  /** What the fit ran on: the tfjs backend, or onnxruntime for the ORT engine. */
  backend_: string | null = null;
  /** The engine that trained (params.engine resolved). */
  engine_: 'tfjs' | 'ort' | null = null;
  fitSeconds_ = 0;
  trainRows_ = 0;

  constructor(params: TuneOverrides & { method: TuneMethod }) {
    this.params = resolveTuneParams(params, this.constructor.name);
  }

  getParams(): TuneParams {
    return structuredClone(this.params);
  }

  setParams(p: TuneOverrides): this {
    const known = Object.keys(this.params);
    for (const k of Object.keys(p))
      if (!known.includes(k)) throw new NmlabError('BAD_REQUEST', `${this.constructor.name}.setParams: unknown parameter "${k}"; known: ${known.join(', ')}`);
    if (p.method !== undefined && p.method !== this.params.method)
      throw new NmlabError('BAD_REQUEST', `${this.constructor.name}.setParams: method is fixed (${this.params.method}); make another estimator`);
    this.params = resolveTuneParams({ ...this.params, ...structuredClone(p) }, `${this.constructor.name}.setParams`);
    return this;
  }

  /** An unfitted copy with the same parameters. */
  clone(): FeatureTuner {
    const Ctor = this.constructor as new (p: TuneOverrides & { method: TuneMethod }) => FeatureTuner;
    return new Ctor(this.getParams());
  }

  /** The NMTune term weights in force, or null where the objective is plain CE (LP, MLP). */
  termWeights(): TuneTerms | null {
    return this.params.method === 'nmtune' ? this.params.terms : null;
  }

  /** Two views per batch (the authors' weak/strong pair): the reference preset with an MLP. */
  private get twoViews(): boolean {
    return this.params.preset === 'reference' && this.params.method !== 'lp';
  }

  get isFitted(): boolean {
    return this.head_ !== null;
  }

  protected requireFitted(what: string): void {
    if (!this.head_) throw new NmlabError('NOT_FITTED', `${this.constructor.name}.${what}: call fit() first`);
  }

  /**
   * Train on `train`. Replaces any earlier fit. With `signal` aborted the loop stops after the
   * current step and the model stays usable; `stopped_` says where it stopped.
   */
  async fit(train: FeatureSet, opts: FitOptions = {}): Promise<this> {
    const p = this.params;
    const seenClasses = checkFeatureSet(train, train.name ?? 'training set');
    const numClasses = p.numClasses ?? seenClasses;
    if (seenClasses > numClasses) throw new NmlabError('BAD_REQUEST', `${train.name ?? 'training set'}: label ${seenClasses - 1} is out of range for numClasses ${numClasses}`);
    this.dispose();
    this.backend_ = (await initTfBackend()).chosen;
    const t0 = performance.now();
    const root = new Rng(p.seed);
    const dataRng = root.fork();
    const initRng = root.fork();
    const shuffleRng = root.fork();
    const augRng = root.fork();

    const subset = stratifiedFraction(train.labels, p.fraction, dataRng);
    this.trainRows_ = subset.length;
    const D = train.dim;
    this.dim_ = D;
    this.numClasses_ = numClasses;
    const usesMlp = p.method !== 'lp';
    if (usesMlp) this.mlp_ = new Mlp({ dim: D, ratio: p.mlpRatio, hiddenBlocks: p.hiddenBlocks, residual: p.residual, residualScaleInit: p.residualScaleInit }, initRng);
    this.head_ = p.headInit === 'kaiming-zero' ? kaimingHeadInit(initRng, D, numClasses) : linearInit(initRng, D, numClasses);
    // Batches of one row break BatchNorm and the batch covariance: drop such a final batch.
    const minBatch = usesMlp ? 2 : 1;
    const fullBatches = Math.floor(subset.length / p.batchSize);
    const rest = subset.length - fullBatches * p.batchSize;
    const stepsPerEpoch = fullBatches + (rest >= minBatch ? 1 : 0);
    if (stepsPerEpoch === 0) throw new NmlabError('BAD_REQUEST', `${train.name ?? 'training set'}: ${subset.length} training rows after the data fraction are too few for a batch`);
    const totalSteps = stepsPerEpoch * p.epochs;
    const schedule = { kind: p.schedule, baseLr: p.lr, totalSteps, warmupSteps: Math.round(p.warmupEpochs * stepsPerEpoch) };
    const twoViews = this.twoViews;
    const engine = await this.resolveEngine();
    this.engine_ = engine;
    const runner = engine === 'ort' ? await this.ortRunner() : this.tfjsRunner();
    if (engine === 'ort') this.backend_ = `onnxruntime (${(await chooseProviders()).name}, ${ortThreads()} threads)`;


    let step = 0;
    let epochsDone = 0;
    let aborted = false;
    for (let epoch = 0; epoch < p.epochs && !aborted; epoch++) {
      const te = performance.now();
      let lossSum = 0;
      const batches = epochBatches(subset, p.batchSize, shuffleRng, minBatch);
      for (const idx of batches) {
        if (opts.signal?.aborted) {
          aborted = true;
          break;
        }
        const rawX = gatherRows(train.features, D, idx);
        const lr = learningRateAt(schedule, step);
        const labels = Int32Array.from(idx, (i) => train.labels[i]);
        let numbers: number[];
        if (twoViews) {
          // nml_tune.py: inputs = cat([weak, strong]); labels = cat([labels, labels]).
          const views = featureViews(rawX, idx.length, D, p.augment, augRng);
          const x = new Float32Array(2 * rawX.length);
          x.set(views.weak, 0);
          x.set(views.strong, rawX.length);
          const y = new Int32Array(2 * labels.length);
          y.set(labels, 0);
          y.set(labels, labels.length);
          numbers = await runner.step(x, y, 2 * idx.length, lr);
        } else numbers = await runner.step(rawX, labels, idx.length, lr);
        if (!Number.isFinite(numbers[0]))
          throw new NmlabError('NUMERIC', `${this.constructor.name}: loss became ${numbers[0]} at epoch ${epoch + 1}, step ${step + 1}; lower the learning rate (${p.lr})`);
        lossSum += numbers[0];
        step++;
        opts.onStep?.({
          epoch,
          step,
          totalSteps,
          lr,
          ce: numbers[1],
          ...(p.method === 'nmtune' ? { mse: numbers[2], cov: numbers[3], svd: numbers[4] } : {}),
          total: numbers[0],
        });
        // Let the event loop deliver cancellations and flush progress between steps.
        await nextTick();
      }
      if (aborted) break;
      epochsDone = epoch + 1;
      // The epoch's model, for callbacks that evaluate it (the ORT engine trains copies).
      runner.sync();
      opts.onEpoch?.({ epoch: epochsDone, epochs: p.epochs, meanLoss: lossSum / Math.max(1, batches.length), seconds: (performance.now() - te) / 1000 });
    }
    await runner.finish();
    this.stopped_ = { reason: aborted ? 'aborted' : 'completed', epochsDone, steps: step, totalSteps };
    this.fitSeconds_ = (performance.now() - t0) / 1000;
    return this;
  }

  /**
   * Which engine trains: ORT for the one-block MLP (either preset, with or without the
   * residual) when it loads, else tfjs.
   */
  private async resolveEngine(): Promise<'tfjs' | 'ort'> {
    const p = this.params;
    const eligible = p.method !== 'lp' && p.hiddenBlocks === 1;
    if (p.engine === 'tfjs') return 'tfjs';
    if (p.engine === 'ort' && !eligible)
      throw new NmlabError(
        'BAD_REQUEST',
        `${this.constructor.name}: engine "ort" trains the one-block MLP only (method ${p.method}, hiddenBlocks ${p.hiddenBlocks}); use engine "tfjs" or "auto"`,
      );
    if (!eligible) return 'tfjs';
    try {
      await loadOrt();
      return 'ort';
    } catch (err) {
      if (p.engine === 'ort') throw new NmlabError('BACKEND_UNAVAILABLE', `onnxruntime-node could not load (${err instanceof Error ? err.message : String(err)}); use engine "tfjs"`);
      return 'tfjs';
    }
  }

  /** One step through tfjs autodiff (any method or MLP shape). */
  private tfjsRunner(): StepRunner {
    const p = this.params;
    const vars: Record<string, tf.Variable> = { ...(this.mlp_?.vars ?? {}), 'head.weight': this.head_!.w, 'head.bias': this.head_!.b };
    const byTfName = new Map(Object.entries(vars).map(([k, v]) => [v.name, k]));
    const varList = Object.values(vars);
    const opt = new AdamW({ weightDecay: p.weightDecay });
    const terms = this.termWeights();
    const D = this.dim_;
    return {
      step: async (xs, labels, rows, lr) => {
        const x = tf.tensor2d(xs, [rows, D]);
        const y = tf.tensor1d(labels, 'int32');
        const stats: BatchStats[] = [];
        const kept: tf.Scalar[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const t = objective({ mlp: this.mlp_, head: this.head_!, x, labels: y, preset: p.preset, terms, stats });
          for (const term of [t.ce, t.mse, t.cov, t.svd]) if (term) kept.push(tf.keep(term));
          return t.total;
        }, varList);
        const named: Record<string, tf.Tensor> = {};
        for (const [tfName, g] of Object.entries(grads)) named[byTfName.get(tfName)!] = g;
        opt.step(vars, named, lr);
        this.mlp_?.updateRunningStats(stats);
        const stacked = tf.stack([value, ...kept]);
        const numbers = Array.from(stacked.dataSync());
        tf.dispose([stacked, value, ...kept, ...Object.values(grads), x, y]);
        return numbers;
      },
      sync: () => undefined,
      finish: async () => opt.dispose(),
    };
  }

  /**
   * One step on onnxruntime with the hand-written backward pass (ortGraphs.ts): parameters
   * are copied out of the tfjs model once, trained as plain arrays, and copied back at the end,
   * so evaluation and transform() are the same code for both engines.
   */
  private async ortRunner(): Promise<StepRunner> {
    const p = this.params;
    const weights = this.termWeights();
    const nmtune = weights !== null;
    const ortStep = await OrtMlpStep.create(nmtune, undefined, p.residual);
    const names = mlpParamNames(p.residual);
    const mlp = this.mlp_!;
    const head = this.head_!;
    const tensors: Record<MlpParamName, tf.Variable> = { ...(mlp.vars as Record<string, tf.Variable>), 'head.weight': head.w, 'head.bias': head.b } as Record<MlpParamName, tf.Variable>;
    const adam = new ArrayAdamW(Object.fromEntries(names.map((k) => [k, tensors[k].dataSync() as Float32Array])), { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: p.weightDecay });
    const params = adam.params as MlpArrays;
    const gradsInto = adam.gradBuffers() as MlpArrays;
    const runMean = Float32Array.from(mlp.running[0].mean.dataSync() as Float32Array);
    const runVar = Float32Array.from(mlp.running[0].variance.dataSync() as Float32Array);
    const C = this.numClasses_;
    // Copy the trained arrays into the tfjs model (per epoch and at the end).
    const sync = () => {
      for (const k of names) tf.tidy(() => tensors[k].assign(tf.tensor(params[k]!, tensors[k].shape)));
      tf.tidy(() => {
        mlp.running[0].mean.assign(tf.tensor1d(runMean));
        mlp.running[0].variance.assign(tf.tensor1d(runVar));
      });
    };
    return {
      step: async (x, labels, rows, lr) => {
        const onehot = new Float32Array(rows * C);
        for (let i = 0; i < rows; i++) onehot[i * C + labels[i]] = 1;
        const r = await ortStep.run(params, x, onehot, rows, weights, p.preset, gradsInto);
        adam.step(r.grads, lr);
        const unbiased = rows / Math.max(1, rows - 1);
        for (let i = 0; i < runMean.length; i++) {
          runMean[i] = (1 - BN_MOMENTUM) * runMean[i] + BN_MOMENTUM * r.mean[i];
          runVar[i] = (1 - BN_MOMENTUM) * runVar[i] + BN_MOMENTUM * r.variance[i] * unbiased;
        }
        return nmtune ? [r.total, r.ce, r.mse!, r.cov!, r.svd!] : [r.total, r.ce];
      },
      sync,
      finish: async () => {
        sync();
        await ortStep.dispose();
      },
    };
  }

  /** Logits and Z for a chunk of rows (eval mode). */
  private forwardChunk(x: Float32Array, rows: number): { z: tf.Tensor2D; logits: tf.Tensor2D } {
    return tf.tidy(() => {
      const f = tf.tensor2d(x, [rows, this.dim_]);
      const z = this.mlp_ ? this.mlp_.forward(f, false) : f;
      const logits = tf.add(tf.matMul(z, this.head_!.w), this.head_!.b) as tf.Tensor2D;
      return { z, logits };
    });
  }

  /** Tuned features Z (row-major float32) and predicted labels, in chunks to bound memory. */
  transformPredict(set: FeatureSet, chunkRows = 1024): { z: Float32Array; predictions: Int32Array } {
    this.requireFitted('transform');
    if (set.dim !== this.dim_) throw new NmlabError('BAD_REQUEST', `${set.name ?? 'feature set'}: ${set.dim} feature columns, but the model was fitted on ${this.dim_}`);
    const z = new Float32Array(set.rows * this.dim_);
    const predictions = new Int32Array(set.rows);
    for (let s = 0; s < set.rows; s += chunkRows) {
      const n = Math.min(chunkRows, set.rows - s);
      const out = this.forwardChunk(set.features.subarray(s * this.dim_, (s + n) * this.dim_), n);
      const arg = tf.argMax(out.logits, 1);
      z.set(out.z.dataSync() as Float32Array, s * this.dim_);
      predictions.set(arg.dataSync() as Int32Array, s);
      tf.dispose([out.z, out.logits, arg]);
    }
    return { z, predictions };
  }

  transform(set: FeatureSet): Float32Array {
    return this.transformPredict(set).z;
  }

  predict(set: FeatureSet): Int32Array {
    return this.transformPredict(set).predictions;
  }

  /** Accuracy, macro-F1 (0–1) and the spectrum of Z on `test` (reference preprocessing, and raw). */
  evaluate(test: FeatureSet): EvalMetrics {
    this.requireFitted('evaluate');
    checkFeatureSet(test, test.name ?? 'test set');
    const { z, predictions } = this.transformPredict(test);
    return {
      accuracy: accuracy(test.labels, predictions),
      macroF1: macroF1(test.labels, predictions),
      rows: test.rows,
      z: zSpectrum(z, test.rows, this.dim_, 'reference'),
      zRaw: zSpectrum(z, test.rows, this.dim_, 'none'),
    };
  }

  /** Free the model's tensors; the estimator returns to the unfitted state. */
  dispose(): void {
    this.mlp_?.dispose();
    this.mlp_ = null;
    if (this.head_) tf.dispose([this.head_.w, this.head_.b]);
    this.head_ = null;
  }
}

/** The two views of the `reference` preset (see `TuneAugment` in src/shared/contract/tuning.ts). */
export function featureViews(x: Float32Array, rows: number, dim: number, aug: TuneAugment, rng: Rng): { strong: Float32Array; weak: Float32Array } {
  const strong = new Float32Array(x.length);
  const weak = new Float32Array(x.length);
  const keep = 1 - aug.strongDropout;
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < dim; c++) ss += x[r * dim + c] ** 2;
    const s = Math.sqrt(ss / dim);
    for (let c = 0; c < dim; c++) {
      const i = r * dim + c;
      const dropped = aug.strongDropout > 0 && rng.next() >= keep;
      strong[i] = (dropped ? 0 : x[i] / keep) + (aug.strongNoise > 0 ? aug.strongNoise * s * rng.normal() : 0);
      weak[i] = x[i] + (aug.weakNoise > 0 ? aug.weakNoise * s * rng.normal() : 0);
    }
  }
  return { strong, weak };
}

/** Linear probing: a linear head on the frozen features (paper §4). */
export class LinearProbe extends FeatureTuner {
  constructor(params: Omit<TuneOverrides, 'method'> = {}) {
    super({ ...params, method: 'lp' });
  }
}

/** MLP tuning: head∘h without regularisers (the paper's ablation of NMTune, §6.2). */
export class MlpTuner extends FeatureTuner {
  constructor(params: Omit<TuneOverrides, 'method'> = {}) {
    super({ ...params, method: 'mlp' });
  }
}

/** Black-box NMTune (paper §6.1, eq. 4–7). */
export class NMTune extends FeatureTuner {
  constructor(params: Omit<TuneOverrides, 'method'> = {}) {
    super({ ...params, method: 'nmtune' });
  }
}

/** The estimator for a method. */
export function makeTuner(params: TuneOverrides & { method: TuneMethod }): FeatureTuner {
  const { method, ...rest } = params;
  if (method === 'lp') return new LinearProbe(rest);
  if (method === 'mlp') return new MlpTuner(rest);
  if (method === 'nmtune') return new NMTune(rest);
  throw new NmlabError('BAD_REQUEST', `unknown tuning method "${String(method)}"; use lp, mlp or nmtune`);
}
