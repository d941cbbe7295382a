/**
 * White-box tuning of an ONNX backbone (issue 11, item 3): `ft`, `lora` or the `lp` baseline,
 * trained on onnxruntime with one training graph per run (forward, cross-entropy, backward,
 * AdamW in one session call per step; ../onnx/autodiff) on the provider every session uses
 * (../onnx/providers.ts), then evaluated on the test set with the exported network (LoRA
 * merged into the weights).
 *
 * Paper defaults (DESIGN §4): LoRA lr 2e-4, wd 1e-4, rank via reduction ratio 8; FT lr 1e-4,
 * wd 1e-4; LP lr 0.01, no weight decay; AdamW, cosine schedule.
 */
import { FinetuneParams, type FinetuneOverrides, type FinetuneResult } from '../../shared/contract/finetune';
import type { EvalResult } from '../../shared/contract/tuning';
import { NmlabError } from '../../shared/errors';
import { encodeModel, type ModelSpec } from '../onnx/builder';
import { decodeModel } from '../onnx/decode';
import { buildTrainingGraph } from '../onnx/autodiff';
import { OnnxTrainer } from '../onnx/autodiff/trainer';
import { chooseProviders, loadOrt, ortThreads } from '../onnx/providers';
import { accuracy, macroF1 } from '../tuning/metrics';
import { Rng } from '../tuning/rng';
import { learningRateAt } from '../tuning/schedule';
import { zSpectrum } from '../tuning/zSpectrum';
import { PRESET_TERMS } from '../tuning/params';
import { insertLora, mergeLora, type LoraAdapter } from './lora';
import { NMTUNE_LOSS, nmtuneAux, trainModeForward, withNmtuneLoss } from './nmtune';
import { dataInput, HEAD_BIAS, HEAD_WEIGHT, LOGITS, withHead, withWeights } from './model';

const DEFAULTS: Record<FinetuneParams['method'], Pick<FinetuneParams, 'lr' | 'weightDecay'>> = {
  ft: { lr: 1e-4, weightDecay: 1e-4 },
  lora: { lr: 2e-4, weightDecay: 1e-4 },
  lp: { lr: 0.01, weightDecay: 0 },
};

/** Every parameter, from the method's paper defaults and the given overrides. */
export function resolveFinetuneParams(overrides: FinetuneOverrides): FinetuneParams {
  const method = overrides.method ?? 'lora';
  return FinetuneParams.parse({ method, epochs: 30, batchSize: 64, schedule: 'cosine', seed: 0, rank: null, loraReduction: 8, loraAlpha: null, nmtune: null, ...DEFAULTS[method], ...overrides });
}

/** Samples as the backbone's float input: `rows` × `sampleShape`, C order. */
export interface TensorSet {
  inputs: Float32Array;
  sampleShape: number[];
  labels: Int32Array;
  rows: number;
  name?: string;
}

export interface FinetuneOptions {
  /** OOD targets evaluated like the test set (named by their `name`). */
  targets?: readonly TensorSet[];
  /** The backbone's feature output Z; default its first output. */
  featureOutput?: string;
  /** The data input; default the first non-initializer input. */
  inputName?: string;
  signal?: AbortSignal;
  onEpoch?: (e: { epoch: number; epochs: number; meanLoss: number; trainAccuracy: number; seconds: number }) => void;
}

export interface FinetuneOutcome {
  result: FinetuneResult;
  /** The tuned network (backbone, LoRA merged, and head) as ONNX bytes; outputs `nmlab.logits` and Z. */
  model: Uint8Array;
}

type Ort = Awaited<ReturnType<typeof loadOrt>>;

async function session(ort: Ort, bytes: Uint8Array, executionProviders: string[]): Promise<import('onnxruntime-node').InferenceSession> {
  return ort.InferenceSession.create(bytes, { executionProviders, intraOpNumThreads: ortThreads(), interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
}

/** Runs `model` over `set` in chunks and returns the `output` rows (rows × width). */
export async function runRows(ort: Ort, s: import('onnxruntime-node').InferenceSession, input: string, output: string, set: TensorSet, chunk = 256): Promise<{ data: Float32Array; width: number }> {
  const per = set.sampleShape.reduce((a, b) => a * b, 1);
  const parts: Float32Array[] = [];
  let width = 0;
  for (let r = 0; r < set.rows; r += chunk) {
    const n = Math.min(chunk, set.rows - r);
    const x = new ort.Tensor('float32', set.inputs.subarray(r * per, (r + n) * per), [n, ...set.sampleShape]);
    const out = (await s.run({ [input]: x }, [output]))[output];
    width = out.dims.slice(1).reduce((a, b) => a * b, 1);
    parts.push(Float32Array.from(out.data as Float32Array));
  }
  const data = new Float32Array(set.rows * width);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { data, width };
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

function argmaxRows(logits: Float32Array, rows: number, c: number): Int32Array {
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (logits[i * c + j] > logits[i * c + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Rows scaled to unit L2 norm (torch's F.normalize: norm clamped below at 1e-12). */
export function normalizeRows(m: { data: Float32Array; width: number }): Float32Array {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.data.length / m.width; r++) {
    let s = 0;
    for (let c = 0; c < m.width; c++) s += m.data[r * m.width + c] ** 2;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let c = 0; c < m.width; c++) out[r * m.width + c] = m.data[r * m.width + c] * inv;
  }
  return out;
}

function checkSet(set: TensorSet, what: string): void {
  const per = set.sampleShape.reduce((a, b) => a * b, 1);
  if (set.inputs.length !== set.rows * per) throw new NmlabError('BAD_REQUEST', `${set.name ?? what}: ${set.inputs.length} values for ${set.rows} samples of shape [${set.sampleShape.join(', ')}]`);
  if (set.labels.length !== set.rows) throw new NmlabError('BAD_REQUEST', `${set.name ?? what}: ${set.labels.length} labels for ${set.rows} samples`);
}

/** Fine-tune `backbone` (ONNX bytes) on `train`, evaluate on `test`. */
export async function finetune(backbone: Uint8Array, train: TensorSet, test: TensorSet, overrides: FinetuneOverrides, opts: FinetuneOptions = {}): Promise<FinetuneOutcome> {
  const t0 = performance.now();
  const p = resolveFinetuneParams(overrides);
  checkSet(train, 'training set');
  checkSet(test, 'test set');
  for (const t of opts.targets ?? []) checkSet(t, 'OOD target');
  const ort = await loadOrt();
  const provider = await chooseProviders();
  // A plain copy: a Node Buffer's slice() shares memory, which the decoder's aligned copies of
  // raw tensor data rely on not happening.
  const spec = decodeModel(Uint8Array.from(backbone));
  const input = dataInput(spec, opts.inputName);
  const featureOutput = opts.featureOutput ?? spec.graph.outputs[0]?.name;
  if (!featureOutput) throw new NmlabError('BAD_FILE', `ONNX model "${spec.graph.name}" has no outputs`);
  const numClasses = Math.max(...train.labels, ...test.labels, ...(opts.targets ?? []).flatMap((t) => Array.from(t.labels))) + 1;
  if (numClasses < 2) throw new NmlabError('BAD_REQUEST', `${train.name ?? 'training set'}: labels have one class only`);

  // The feature output's per-sample shape, from one forward pass of the backbone; with NMTune
  // also the pre-trained features F of every training row (eq. 4's fixed target).
  const probe = await session(ort, backbone, provider.executionProviders);
  let featureShape: number[];
  let target: Float32Array | null = null;
  const sets = [{ ...test, name: test.name ?? 'test' }, ...(opts.targets ?? []).map((t, i) => ({ ...t, name: t.name ?? `target ${i + 1}` }))];
  const backboneSpectra: Array<{ ref: ReturnType<typeof zSpectrum>; raw: ReturnType<typeof zSpectrum> }> = [];
  try {
    const per = train.sampleShape.reduce((a, b) => a * b, 1);
    const out = await probe.run({ [input]: new ort.Tensor('float32', train.inputs.subarray(0, per), [1, ...train.sampleShape]) }, [featureOutput]);
    featureShape = out[featureOutput].dims.slice(1).map(Number);
    if (p.nmtune) target = normalizeRows(await runRows(ort, probe, input, featureOutput, train));
    // The pre-trained backbone's own spectra on each evaluation set, beside the tuned ones.
    for (const set of sets) {
      const f = await runRows(ort, probe, input, featureOutput, set);
      backboneSpectra.push({ ref: zSpectrum(f.data, set.rows, f.width, 'reference'), raw: zSpectrum(f.data, set.rows, f.width, 'none') });
    }
  } finally {
    await probe.release();
  }

  const rng = new Rng(p.seed);
  const initRng = rng.fork();
  const shuffleRng = rng.fork();
  const { model: headed, featureDim, features } = withHead(spec, featureOutput, featureShape, numClasses, initRng);
  let trainModel: ModelSpec = headed;
  let adapters: LoraAdapter[] = [];
  if (p.method === 'lora') {
    ({ model: trainModel, adapters } = insertLora(headed, { rank: p.rank, reduction: p.loraReduction, alpha: p.loraAlpha, rng: initRng, exclude: new Set([HEAD_WEIGHT]) }));
  }
  // ft: every weight of the backbone and head, not scalar constants stored as initializers
  // (e.g. an attention scale) nor NMTune's term weights; the others: head and adapters only.
  const tensors = new Set((headed.graph.initializers ?? []).filter((t) => t.dims.length > 0).map((t) => t.name));
  const trainable = p.method === 'ft' ? (name: string) => tensors.has(name) : [HEAD_WEIGHT, HEAD_BIAS, ...adapters.flatMap((a) => [a.down, a.up])];
  const batchSize = Math.min(p.batchSize, train.rows);
  if (batchSize < 2) throw new NmlabError('BAD_REQUEST', `${train.name ?? 'training set'}: ${train.rows} sample(s) are too few to train on`);
  const terms = p.nmtune ? PRESET_TERMS[p.nmtune] : null;
  const graphModel = terms ? withNmtuneLoss(trainModel, features, batchSize, featureDim, terms, p.nmtune === 'reference' ? 'element-mean' : 'row-mean') : trainModel;
  const graph = buildTrainingGraph(graphModel, {
    ...(terms ? { extraLoss: NMTUNE_LOSS } : {}),
    batchSize,
    input,
    inputShape: [batchSize, ...train.sampleShape],
    logits: LOGITS,
    trainable,
    // LP keeps the backbone as it is, BatchNorm included; ft and lora train on batch statistics.
    batchNorm: p.method === 'lp' ? 'frozen' : 'train',
    optimizer: { kind: 'adamw', weightDecay: p.weightDecay },
  });
  const trainer = await OnnxTrainer.create(graph, { executionProviders: provider.executionProviders });
  // NMTune: Z of each batch under the current weights, for L_SVD's gradient (./nmtune.ts).
  const zModel = terms ? trainModeForward(trainModel, features, graph.params.map((s) => s.name)) : null;
  const zSession = zModel ? await session(ort, encodeModel(zModel), provider.executionProviders) : null;
  const zParams = zModel ? zModel.graph.inputs.map((v) => v.name).filter((n) => n !== input) : [];
  const targetBatch = new Float32Array(batchSize * featureDim);
  const stepsPerEpoch = Math.floor(train.rows / batchSize);
  const schedule = { kind: p.schedule, baseLr: p.lr, totalSteps: stepsPerEpoch * p.epochs };
  const per = train.sampleShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(batchSize * per);
  const y = new Int32Array(batchSize);
  const order = Int32Array.from({ length: train.rows }, (_, i) => i);
  const epochLoss: number[] = [];
  let step = 0;
  let weights: Record<string, Float32Array>;
  try {
    for (let epoch = 0; epoch < p.epochs; epoch++) {
      const te = performance.now();
      shuffleRng.shuffle(order);
      let lossSum = 0;
      let correct = 0;
      for (let b = 0; b < stepsPerEpoch; b++) {
        if (opts.signal?.aborted) throw new NmlabError('CANCELLED', `fine-tuning cancelled at epoch ${epoch + 1}, step ${b + 1}`);
        for (let i = 0; i < batchSize; i++) {
          const row = order[b * batchSize + i];
          x.set(train.inputs.subarray(row * per, (row + 1) * per), i * per);
          y[i] = train.labels[row];
        }
        let aux: Record<string, Float32Array> = {};
        let svdCorrection = 0;
        if (terms && zSession && target) {
          const feeds: Record<string, import('onnxruntime-node').Tensor> = { [input]: new ort.Tensor('float32', x, [batchSize, ...train.sampleShape]) };
          for (const n of zParams) feeds[n] = trainer.current(n) as import('onnxruntime-node').Tensor;
          const z = (await zSession.run(feeds, [features]))[features].data as Float32Array;
          for (let i = 0; i < batchSize; i++) targetBatch.set(target.subarray(order[b * batchSize + i] * featureDim, (order[b * batchSize + i] + 1) * featureDim), i * featureDim);
          const n = nmtuneAux(z, batchSize, featureDim, terms.svdTopK, targetBatch);
          aux = n.aux;
          // The graph's loss holds ⟨G, Z⟩ for L_SVD; report L_SVD itself.
          svdCorrection = terms.svd * n.svdOffset;
        }
        const r = await trainer.step(x, y, learningRateAt(schedule, step), aux);
        r.loss += svdCorrection;
        if (!Number.isFinite(r.loss)) throw new NmlabError('NUMERIC', `${p.method}: loss became ${r.loss} at epoch ${epoch + 1}, step ${b + 1}; lower the learning rate (${p.lr})`);
        lossSum += r.loss;
        correct += r.correct;
        step++;
      }
      epochLoss.push(lossSum / stepsPerEpoch);
      opts.onEpoch?.({ epoch: epoch + 1, epochs: p.epochs, meanLoss: lossSum / stepsPerEpoch, trainAccuracy: correct / (stepsPerEpoch * batchSize), seconds: (performance.now() - te) / 1000 });
    }
    weights = trainer.weights();
  } finally {
    await trainer.release();
    await zSession?.release();
  }

  const tuned = p.method === 'lora' ? mergeLora(headed, adapters, weights) : withWeights(headed, weights);
  const bytes = encodeModel(tuned);
  const evalSession = await session(ort, bytes, provider.executionProviders);
  const evaluations: EvalResult[] = [];
  try {
    for (const [i, set] of sets.entries()) {
      const logits = await runRows(ort, evalSession, input, LOGITS, set);
      const z = await runRows(ort, evalSession, input, features, set);
      const predicted = argmaxRows(logits.data, set.rows, numClasses);
      const ref = zSpectrum(z.data, set.rows, z.width, 'reference');
      const raw = zSpectrum(z.data, set.rows, z.width, 'none');
      const f = backboneSpectra[i];
      evaluations.push({
        name: set.name,
        accuracy: accuracy(set.labels, predicted),
        macroF1: macroF1(set.labels, predicted),
        rows: set.rows,
        sve: ref.sve,
        lsvr: ref.lsvr,
        sveRaw: raw.sve,
        lsvrRaw: raw.lsvr,
        backboneSve: f.ref.sve,
        backboneLsvr: f.ref.lsvr,
        backboneSveRaw: f.raw.sve,
        backboneLsvrRaw: f.raw.lsvr,
      });
    }
  } finally {
    await evalSession.release();
  }
  const ood = evaluations.slice(1);
  const trainableParams = graph.params.reduce((a, s) => a + s.shape.reduce((u, v) => u * v, 1), 0);
  const result: FinetuneResult = {
    accuracy: evaluations[0].accuracy,
    macroF1: evaluations[0].macroF1,
    method: p.method,
    provider: provider.name,
    epochs: p.epochs,
    seconds: (performance.now() - t0) / 1000,
    params: p,
    trainableParams,
    adapted: adapters.map((a) => ({ weight: a.weight, rank: a.rank })),
    featureDim,
    numClasses,
    epochLoss,
    trainRows: train.rows,
    testRows: test.rows,
    test: evaluations[0],
    targets: ood,
    oodAccuracy: ood.length ? mean(ood.map((e) => e.accuracy)) : null,
    oodLsvr: ood.length ? mean(ood.map((e) => e.lsvr)) : null,
    backboneSve: backboneSpectra[0].ref.sve,
    backboneLsvr: ood.length ? mean(backboneSpectra.slice(1).map((b) => b.ref.lsvr)) : backboneSpectra[0].ref.lsvr,
  };
  return { result, model: bytes };
}
