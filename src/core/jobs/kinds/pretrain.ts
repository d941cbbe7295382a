/**
 * `pretrain`: noisy pre-training of one CNN backbone in a worker (DESIGN §2, §4), with
 * symmetric or asymmetric (paper §7.3) label noise drawn on the dataset's train split. Progress is
 * optimisation steps done of the total; the `loss` series streams per-step loss and learning
 * rate, the `epoch` series per-epoch loss and accuracy on the noisy labels, so the UI can draw
 * the loss curve live. Cancelling stops between steps and saves nothing.
 */
import { join, relative } from 'node:path';
import { stat } from 'node:fs/promises';
import type { PretrainJobResult, PretrainJobSpec } from '../../../shared/contract/pretrain';
import { NmlabError } from '../../../shared/errors';
import { gatherRows, loadDataset, splitRows } from '../../datasets/store';
import type { LabelNoiseSpec } from '../../noise';
import { resolveInside } from '../../projects/resolveInside';
import { backboneIdFor } from '../../pretrain/backbone';
import { limitSet, runPretrain } from '../../pretrain/run';
import { DEFAULT_HYPER, type ImageSet } from '../../pretrain/train';
import type { JobRun } from './types';

async function imageSet(projectDir: string, id: string, which: 'train' | 'test' | 'all'): Promise<{ set: ImageSet; numClasses: number } | null> {
  const ds = await loadDataset(projectDir, id);
  if (!ds.images) throw new NmlabError('BAD_REQUEST', `dataset "${id}" holds features, not images; pre-training needs an image dataset`);
  if (which === 'test' && !ds.split) return null;
  const rows = splitRows(ds, which);
  const { height, width, channels } = ds.images;
  const per = height * width * channels;
  return {
    set: { pixels: gatherRows(ds.images.pixels, per, rows), count: rows.length, size: [channels, height, width], labels: gatherRows(ds.labels, 1, rows) },
    numClasses: ds.manifest.classes.length,
  };
}

/** The job's noise as the injection takes it (its seed defaults to the job's; map keys become numbers). */
export function labelNoiseOf(n: PretrainJobSpec['noise'], seed: number): LabelNoiseSpec {
  if (n.type === 'symmetric') return { type: 'symmetric', ratio: n.ratio, seed: n.seed ?? seed };
  return {
    type: 'asymmetric',
    ratio: n.ratio,
    seed: n.seed ?? seed,
    ...(n.classes ? { classes: n.classes } : {}),
    ...(n.map ? { map: Object.fromEntries(Object.entries(n.map).map(([k, v]) => [Number(k), v])) } : {}),
  };
}

export const run: JobRun<'pretrain'> = async (spec, ctx) => {
  const id = spec.id ?? backboneIdFor(spec.noise.ratio);
  const outDir = await resolveInside(spec.projectDir, join('backbones', id));
  if (!spec.force && (await stat(join(outDir, 'backbone.json')).then(() => true, () => false))) {
    throw new NmlabError('ALREADY_EXISTS', `backbone "${id}" already exists in ${spec.projectDir}; set force or choose another id`);
  }
  const train = await imageSet(spec.projectDir, spec.dataset, 'train');
  if (!train) throw new NmlabError('INTERNAL', 'no training rows');
  const test = spec.testDataset ? await imageSet(spec.projectDir, spec.testDataset, 'all') : await imageSet(spec.projectDir, spec.dataset, 'test');
  const trainSet = limitSet(train.set, spec.limit);
  const epochs = spec.hyper.epochs ?? DEFAULT_HYPER.epochs;
  const batch = spec.hyper.batchSize ?? DEFAULT_HYPER.batchSize;
  const totalSteps = Math.max(1, Math.floor(trainSet.count / batch)) * epochs;
  let done = 0;
  ctx.progress(0, totalSteps, `pre-training ${id} on ${trainSet.count} images, γ=${spec.noise.ratio}`);
  const r = await runPretrain({
    train: trainSet,
    test: test?.set,
    numClasses: train.numClasses,
    noise: labelNoiseOf(spec.noise, spec.seed),
    seed: spec.seed,
    hyper: spec.hyper,
    arch: spec.arch,
    outDir,
    id,
    dataset: `project dataset "${spec.dataset}"`,
    signal: ctx.signal,
    // Every other step: a smooth live loss curve (the runner coalesces what it forwards).
    stepEvery: 2,
    onEvent: (e) => {
      if (e.kind === 'step') {
        done = e.epoch * e.stepsPerEpoch + e.step + 1;
        ctx.metric('loss', done, { loss: e.loss, lr: e.lr });
        ctx.progress(done, totalSteps, `epoch ${e.epoch + 1}/${epochs}, step ${e.step + 1}/${e.stepsPerEpoch}`);
      } else {
        ctx.metric('epoch', e.epoch + 1, { loss: e.loss, trainAcc: e.trainAcc, seconds: e.seconds, imagesPerSecond: e.imagesPerSecond });
        ctx.log('info', `epoch ${e.epoch + 1}/${e.epochs}: loss ${e.loss.toFixed(4)}, accuracy on noisy labels ${(100 * e.trainAcc).toFixed(1)}%, ${e.imagesPerSecond.toFixed(0)} img/s`);
      }
    },
  });
  ctx.progress(totalSteps, totalSteps, `saved ${id}`);
  const p = r.provenance;
  const result: PretrainJobResult = {
    id: r.manifest.id,
    backbone: relative(spec.projectDir, r.dir),
    featureDim: r.manifest.output.featureDim,
    sha256: r.manifest.sha256,
    noise: p.noise,
    ...(p.labelsSha256 ? { labelsSha256: p.labelsSha256 } : {}),
    flippedCount: p.flippedCount,
    epochs: p.epochs,
    trainAccNoisy: p.trainAccNoisy,
    trainAccClean: p.trainAccClean,
    memorised: p.memorised,
    ...(p.testAcc !== undefined ? { testAcc: p.testAcc } : {}),
    backend: r.backend,
    seconds: r.seconds,
  };
  return result;
};
