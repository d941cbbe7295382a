/**
 * A study's white-box fit (methods `ft` and `lora`, src/core/finetune): the backbone's ONNX
 * model trained on the task's images with the backbone's preprocessing, evaluated on the ID
 * test and every OOD target; its result becomes the run's result.json. The result
 * carries TuneRunResult's evaluation fields (`test`, `targets`, `oodAccuracy`, spectra), so
 * the comparison reads ft and lora rows like any other fit.
 */
import { readFile } from 'node:fs/promises';
import type { FinetuneOverrides, FinetuneResult } from '../../../shared/contract/finetune';
import type { StudySet, TuneStudyJob } from '../../../shared/contract/study';
import type { DownstreamNoiseResult } from '../../../shared/contract/tuning';
import { NmlabError } from '../../../shared/errors';
import { loadDataset } from '../../datasets/store';
import { BACKBONES_FOLDER, loadBackbone, type BackboneRef } from '../../features/backbone';
import { FeatureExtractor } from '../../features/extract';
import { finetune, type TensorSet } from '../../finetune/run';
import { imageAt } from '../../images/image';
import { batchDims, preprocessBatch } from '../../images/preprocess';
import { resolveInside } from '../../projects/resolveInside';
import { stratifiedFraction } from '../../tuning/data';
import { downstreamLabels } from '../../tuning/downstreamNoise';
import { Rng } from '../../tuning/rng';
import { setRows } from './studySets';

export interface FinetuneFitContext {
  signal?: AbortSignal;
  log: (line: string) => Promise<void>;
  progress: (done: number, total: number, message?: string) => void;
}

/** A study set's images, preprocessed as the backbone declares, as the backbone's float input. */
async function tensorSet(projectDir: string, fx: FeatureExtractor, set: StudySet): Promise<TensorSet> {
  if ('features' in set) throw new NmlabError('UNSUPPORTED', `set "${set.name}" is a feature file; ft and lora train the backbone and need a project dataset with images`);
  const ds = await loadDataset(projectDir, set.dataset);
  if (!ds.images) throw new NmlabError('UNSUPPORTED', `dataset "${set.dataset}" holds features, not images; ft and lora need images`);
  const rows = setRows(ds, set);
  const p = fx.requirePreprocess();
  const images = rows.map((r) => imageAt(ds.images!, r));
  return { inputs: preprocessBatch(images, p), sampleShape: batchDims(p, 1).slice(1), labels: Int32Array.from(rows, (r) => ds.labels[r]), rows: rows.length, name: set.name };
}

/** Rows `idx` of a set. */
function subset(set: TensorSet, idx: Int32Array): TensorSet {
  const per = set.sampleShape.reduce((a, b) => a * b, 1);
  const inputs = new Float32Array(idx.length * per);
  idx.forEach((r, k) => inputs.set(set.inputs.subarray(r * per, (r + 1) * per), k * per));
  return { ...set, inputs, labels: Int32Array.from(idx, (r) => set.labels[r]), rows: idx.length };
}

/** Runs the fit and returns its result (the caller writes it as the run's result.json). */
export async function finetuneFit(projectDir: string, job: TuneStudyJob, c: FinetuneFitContext): Promise<FinetuneResult> {
  if (job.method !== 'ft' && job.method !== 'lora') throw new NmlabError('INTERNAL', `finetuneFit: method ${job.method} is black-box tuning`);
  if (!job.test) throw new NmlabError('BAD_REQUEST', `${job.label} on ${job.task}: ft and lora need a test set`);
  const ref: BackboneRef = await loadBackbone(await resolveInside(projectDir, `${BACKBONES_FOLDER}/${job.backbone}`));
  const fx = await FeatureExtractor.open(ref, { threads: 1 });
  let train: TensorSet;
  let test: TensorSet;
  const targets: TensorSet[] = [];
  try {
    train = await tensorSet(projectDir, fx, job.train);
    test = await tensorSet(projectDir, fx, job.test);
    for (const t of job.targets) targets.push(await tensorSet(projectDir, fx, t));
  } finally {
    await fx.release();
  }
  // The same stratified fraction as the black-box fits draw (tuning/data.ts), seeded by the fit.
  if (job.fraction < 1) train = subset(train, stratifiedFraction(train.labels, job.fraction, new Rng(job.seed)));
  // Downstream label noise η on the training labels, drawn as the black-box fits draw it (after the fraction).
  const noise = job.params.downstreamNoise;
  let noiseResult: DownstreamNoiseResult | undefined;
  if (noise && noise.eta > 0) {
    const classes = Math.max(...train.labels, ...test.labels, ...targets.flatMap((t) => Array.from(t.labels))) + 1;
    const drawn = downstreamLabels(train.labels, noise, job.seed, classes);
    train = { ...train, labels: drawn.labels };
    noiseResult = drawn.result;
  }
  const { lr, weightDecay, epochs, batchSize, schedule } = job.params;
  const overrides: FinetuneOverrides = { method: job.method, seed: job.seed, ...(lr !== undefined ? { lr } : {}), ...(weightDecay !== undefined ? { weightDecay } : {}), ...(epochs !== undefined ? { epochs } : {}), ...(batchSize !== undefined ? { batchSize } : {}), ...(schedule !== undefined ? { schedule } : {}) };
  await c.log(`${job.method} of ${job.backbone} on ${train.rows} training images (${job.task}), ${targets.length} OOD targets`);
  const { result } = await finetune(new Uint8Array(await readFile(ref.onnxFile)), train, test, overrides, {
    featureOutput: ref.manifest?.output.node,
    inputName: ref.manifest?.input?.node,
    targets,
    signal: c.signal,
    onEpoch: (e) => {
      c.progress(e.epoch, e.epochs, `epoch ${e.epoch}`);
      void c.log(`epoch ${e.epoch}/${e.epochs}: loss ${e.meanLoss.toFixed(4)}, train accuracy ${(100 * e.trainAccuracy).toFixed(1)} %`);
    },
  });
  await c.log(`${job.method}: test accuracy ${(100 * result.accuracy).toFixed(2)} % on ${result.provider} in ${result.seconds.toFixed(1)} s`);
  return noiseResult ? { ...result, downstreamNoise: noiseResult } : result;
}
