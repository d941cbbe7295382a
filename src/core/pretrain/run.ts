/**
 * One noisy pre-training run end to end (DESIGN §4, the paper's §3 protocol): inject label
 * noise γ into a clean training set, pre-train a CNN on the noisy labels, evaluate it, and
 * save it as a backbone folder with its noise provenance. Used by `nmlab pretrain`, the
 * `pretrain` job kind and the demo.
 */
import { injectLabelNoise, labelsSha256, type LabelNoiseSpec } from '../noise';
import { initTfBackend } from '../tf/backend';
import { ensureGradients } from '../tf/gradients';
import { NmlabError } from '../../shared/errors';
import { backboneIdFor, saveBackbone, type PretrainProvenance, type SavedBackbone } from './backbone';
import type { CnnSpec } from './cnn';
import { memorisationOf, memorisedShare } from './memorisation';
import { accuracyOf, predictCnn, pretrainCnn, type ImageSet, type PretrainEvent, type PretrainHyper } from './train';

export interface PretrainRunOptions {
  /** Training images with their clean labels. */
  train: ImageSet;
  /** Optional clean held-out set for the reported test accuracy. */
  test?: ImageSet;
  numClasses: number;
  /** Label noise drawn on the training labels: symmetric, or asymmetric within classes / along a class map (paper §7.3). */
  noise: LabelNoiseSpec;
  /** Seed of initialisation and shuffling. */
  seed: number;
  hyper?: Partial<PretrainHyper>;
  arch?: Partial<Omit<CnnSpec, 'numClasses' | 'inputSize'>>;
  mean?: number[];
  std?: number[];
  /** Folder to write the backbone into (model.onnx, backbone.json, weights). */
  outDir: string;
  /** Backbone id; `nmlab-cnn.gNN` from γ by default. */
  id?: string;
  /** Names the training data in the provenance. */
  dataset: string;
  onEvent?: (ev: PretrainEvent) => void;
  /** Step events every this many steps (default 10). */
  stepEvery?: number;
  signal?: AbortSignal;
}

export interface PretrainRunResult extends SavedBackbone {
  provenance: PretrainProvenance;
  aborted: boolean;
  backend: string;
  seconds: number;
}

/** Inject noise, train, evaluate, save. Throws CANCELLED (nothing saved) when aborted. */
export async function runPretrain(opts: PretrainRunOptions): Promise<PretrainRunResult> {
  const t0 = performance.now();
  await initTfBackend();
  await ensureGradients();
  const noise = injectLabelNoise(opts.train.labels, opts.noise, opts.numClasses);
  const noisyTrain: ImageSet = { ...opts.train, labels: noise.labels };
  const trained = await pretrainCnn({
    train: noisyTrain,
    numClasses: opts.numClasses,
    seed: opts.seed,
    hyper: opts.hyper,
    arch: opts.arch,
    mean: opts.mean,
    std: opts.std,
    onEvent: opts.onEvent,
    stepEvery: opts.stepEvery,
    signal: opts.signal,
  });
  try {
    if (trained.aborted) throw new NmlabError('CANCELLED', `pre-training of γ=${opts.noise.ratio} stopped after ${trained.epochsDone} of ${trained.hyper.epochs} epochs (${trained.stepsDone} steps); nothing was saved`);
    const predTrain = await predictCnn(trained.model, opts.train, trained.normalization);
    const predTest = opts.test ? await predictCnn(trained.model, opts.test, trained.normalization) : undefined;
    const id = opts.id ?? backboneIdFor(opts.noise.ratio);
    const mem = memorisationOf(predTrain, noise.labels, opts.train.labels, noise.flippedIndices);
    const provenance: PretrainProvenance = {
      source: 'nmlab-pretrain',
      createdAt: new Date().toISOString(),
      dataset: opts.dataset,
      noise: noiseRecord(opts.noise),
      labelsSha256: labelsSha256(noise.labels),
      flippedCount: noise.flippedIndices.length,
      transitionMatrix: noise.transitionMatrix,
      prng: noise.prng,
      seed: opts.seed,
      trainCount: opts.train.count,
      epochs: trained.epochsDone,
      arch: trained.model.spec,
      hyper: { ...trained.hyper },
      backend: trained.engine,
      seconds: trained.seconds,
      trainAccNoisy: accuracyOf(predTrain, noise.labels),
      trainAccClean: accuracyOf(predTrain, opts.train.labels),
      memorised: memorisedShare(mem),
      corrected: mem.flipped > 0 ? mem.corrected / mem.flipped : null,
      ...(predTest && opts.test ? { testAcc: accuracyOf(predTest, opts.test.labels), testCount: opts.test.count } : {}),
      history: trained.history.map((e) => ({ epoch: e.epoch, loss: e.loss, trainAcc: e.trainAcc, seconds: e.seconds })),
    };
    const saved = await saveBackbone(opts.outDir, trained.model, { id, provenance, normalization: trained.normalization });
    return { ...saved, provenance, aborted: false, backend: trained.engine, seconds: (performance.now() - t0) / 1000 };
  } finally {
    trained.model.dispose();
  }
}

/** The noise as provenance records it: type, ratio, seed, and for asymmetric noise its classes and map. */
function noiseRecord(n: LabelNoiseSpec): PretrainProvenance['noise'] {
  if (n.type === 'symmetric') return { type: n.type, ratio: n.ratio, seed: n.seed };
  return { type: n.type, ratio: n.ratio, seed: n.seed, ...(n.classes ? { classes: [...n.classes] } : {}), ...(n.map ? { map: { ...n.map } } : {}) };
}

/** The first `limit` images (and labels) of a set, or the set itself. */
export function limitSet(set: ImageSet, limit: number | undefined): ImageSet {
  if (limit === undefined || limit >= set.count) return set;
  if (!(limit >= 1)) throw new NmlabError('BAD_REQUEST', `--limit must be a positive integer, got ${limit}`);
  const per = set.size[0] * set.size[1] * set.size[2];
  return { ...set, count: limit, pixels: set.pixels.subarray(0, limit * per), labels: set.labels.subarray(0, limit) };
}
