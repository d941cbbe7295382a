/**
 * `nmlab pretrain`: pre-train one NMLab CNN backbone on MNIST-style IDX images whose labels
 * get symmetric noise γ (DESIGN §4; the paper's §3 protocol), export it to ONNX and write it
 * as a backbone folder (model.onnx, backbone.json with the noise provenance, weights).
 */
import { join, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type Command } from '../command';
import { readIdxPair } from '../../core/datasets/idx';
import { readManifest } from '../../core/projects';
import { backboneIdFor } from '../../core/pretrain/backbone';
import { limitSet, runPretrain } from '../../core/pretrain/run';
import type { ImageSet, PretrainHyper } from '../../core/pretrain/train';
import { NmlabError } from '../../shared/errors';

const USAGE = `Usage: nmlab pretrain --idx-images F --idx-labels F (--out DIR | --project DIR)
                      [--noise symmetric --ratio R] [--noise-seed S] [--seed S] [--epochs N]
                      [--limit N] [--test-images F --test-labels F] [--test-limit N]
                      [--batch-size B] [--lr LR] [--optimizer adamw|sgd] [--weight-decay WD]
                      [--loss ce|bce] [--label-smoothing E] [--widths 16,32,64] [--stem-width W]
                      [--id ID] [--force] [--json]

Pre-trains a small ResNet-style CNN on the images with labels corrupted by symmetric noise
of ratio R (exactly round(R·N) labels changed to another class, seeded), on onnxruntime
(TensorFlow.js where it cannot load, or with --loss bce; NMLAB_PRETRAIN_ENGINE=ort|tfjs
forces one), then writes the backbone: model.onnx (features output 'features'),
backbone.json (id, sha256, preprocessing, provenance: noise, flipped count, realised
transition matrix, accuracies, the engine that trained it) and the tfjs weights.

Options:
  --idx-images F, --idx-labels F   training images (uint8 N×H×W[×C]) and labels, gzipped or not
  --out DIR          write the backbone folder here
  --project DIR      or store it in the project as DIR/backbones/<id>/
  --ratio R          noise ratio γ in [0, 1] (default 0); --noise symmetric is the only type
  --noise-seed S     seed of the noise (default: --seed)
  --seed S           seed of initialisation and shuffling (default 0)
  --epochs N         default 6
  --limit N          use the first N training images
  --test-images F, --test-labels F, --test-limit N   clean held-out set for the test accuracy
  --id ID            backbone id (default nmlab-cnn.gNN, NN = γ in percent)
  --force            replace an existing backbone folder with the same id
  --json             print one JSON object (progress goes to stderr)
`;

function intOpt(v: number | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function parseWidths(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const w = text.split(',').map((s) => Number(s.trim()));
  if (w.length === 0 || w.some((v) => !Number.isInteger(v) || v < 1)) throw new UsageError(`--widths must be comma-separated positive integers, got "${text}"`);
  return w;
}

async function readSet(images: string, labels: string): Promise<{ set: ImageSet; numClasses: number }> {
  const pair = await readIdxPair(images, labels);
  const { count, height, width, channels, pixels } = pair.images;
  let max = 0;
  for (const y of pair.labels) max = Math.max(max, y);
  return { set: { pixels, count, size: [channels, height, width], labels: pair.labels }, numClasses: max + 1 };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export const pretrainCommand: Command = {
  name: 'pretrain',
  summary: 'pre-train a CNN backbone on IDX images with label noise γ, export it to ONNX',
  usage: USAGE,
  options: {
    'idx-images': { type: 'string' },
    'idx-labels': { type: 'string' },
    'test-images': { type: 'string' },
    'test-labels': { type: 'string' },
    'test-limit': { type: 'string' },
    noise: { type: 'string' },
    ratio: { type: 'string' },
    'noise-seed': { type: 'string' },
    seed: { type: 'string' },
    epochs: { type: 'string' },
    limit: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    optimizer: { type: 'string' },
    'weight-decay': { type: 'string' },
    loss: { type: 'string' },
    'label-smoothing': { type: 'string' },
    widths: { type: 'string' },
    'stem-width': { type: 'string' },
    id: { type: 'string' },
    out: { type: 'string' },
    project: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const imagesFile = requireOpt(args, 'idx-images');
    const labelsFile = requireOpt(args, 'idx-labels');
    const noiseType = stringOpt(args, 'noise') ?? 'symmetric';
    if (noiseType !== 'symmetric') throw new UsageError(`--noise must be symmetric (got "${noiseType}")`);
    const ratio = numberOpt(args, 'ratio') ?? 0;
    if (!(ratio >= 0 && ratio <= 1)) throw new UsageError(`--ratio must be in [0, 1], got ${ratio}`);
    const seed = intOpt(numberOpt(args, 'seed'), 'seed', 0) ?? 0;
    const noiseSeed = intOpt(numberOpt(args, 'noise-seed'), 'noise-seed', 0) ?? seed;
    const optimizer = stringOpt(args, 'optimizer');
    if (optimizer !== undefined && optimizer !== 'adamw' && optimizer !== 'sgd') throw new UsageError(`--optimizer must be adamw or sgd, got "${optimizer}"`);
    const loss = stringOpt(args, 'loss');
    if (loss !== undefined && loss !== 'ce' && loss !== 'bce') throw new UsageError(`--loss must be ce or bce, got "${loss}"`);
    const hyper: Partial<PretrainHyper> = {};
    const epochs = intOpt(numberOpt(args, 'epochs'), 'epochs', 1);
    if (epochs !== undefined) hyper.epochs = epochs;
    const batch = intOpt(numberOpt(args, 'batch-size'), 'batch-size', 2);
    if (batch !== undefined) hyper.batchSize = batch;
    const lr = numberOpt(args, 'lr');
    if (lr !== undefined) hyper.lr = lr;
    const wd = numberOpt(args, 'weight-decay');
    if (wd !== undefined) hyper.weightDecay = wd;
    const smoothing = numberOpt(args, 'label-smoothing');
    if (smoothing !== undefined) {
      if (!(smoothing >= 0 && smoothing < 1)) throw new UsageError(`--label-smoothing must be in [0, 1), got ${smoothing}`);
      hyper.labelSmoothing = smoothing;
    }
    if (optimizer) hyper.optimizer = optimizer;
    if (loss) hyper.loss = loss;
    const widths = parseWidths(stringOpt(args, 'widths'));
    const stemWidth = intOpt(numberOpt(args, 'stem-width'), 'stem-width', 1);
    const arch = { ...(widths ? { widths, blocks: widths.map(() => 1) } : {}), ...(stemWidth ? { stemWidth } : {}) };
    const limit = intOpt(numberOpt(args, 'limit'), 'limit', 1);
    const testLimit = intOpt(numberOpt(args, 'test-limit'), 'test-limit', 1);
    const testImages = stringOpt(args, 'test-images');
    const testLabels = stringOpt(args, 'test-labels');
    if ((testImages === undefined) !== (testLabels === undefined)) throw new UsageError('--test-images and --test-labels go together');
    const outOpt = stringOpt(args, 'out');
    const projectOpt = stringOpt(args, 'project');
    if ((outOpt === undefined) === (projectOpt === undefined)) throw new UsageError('give exactly one of --out DIR and --project DIR');
    const id = stringOpt(args, 'id') ?? backboneIdFor(ratio);

    let outDir: string;
    if (projectOpt !== undefined) {
      const project = resolve(projectOpt);
      await readManifest(project); // a clear BAD_PROJECT error when DIR is not a project
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$/.test(id)) throw new UsageError(`--id "${id}" is not a backbone id (letters, digits, - and _, optionally arch.tag)`);
      outDir = join(project, 'backbones', id);
    } else {
      outDir = resolve(outOpt as string);
    }
    if (args.values.force !== true && (await exists(join(outDir, 'backbone.json')))) {
      throw new NmlabError('ALREADY_EXISTS', `${outDir} already holds a backbone; pass --force to replace it or --id to choose another id`);
    }

    const { set: fullTrain, numClasses } = await readSet(imagesFile, labelsFile);
    const train = limitSet(fullTrain, limit);
    let test: ImageSet | undefined;
    if (testImages && testLabels) {
      const t = await readSet(testImages, testLabels);
      if (t.set.size.join() !== train.size.join()) throw new NmlabError('BAD_FILE', `${testImages} has images of ${t.set.size.join('×')}, the training images are ${train.size.join('×')}`);
      test = limitSet(t.set, testLimit);
    }

    const controller = new AbortController();
    const onSigint = (): void => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      const r = await runPretrain({
        train,
        test,
        numClasses,
        noise: { type: 'symmetric', ratio, seed: noiseSeed },
        seed,
        hyper,
        arch,
        outDir,
        id,
        dataset: imagesFile,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.kind === 'epoch') io.err(`epoch ${e.epoch + 1}/${e.epochs}  loss ${e.loss.toFixed(4)}  train acc (noisy labels) ${(100 * e.trainAcc).toFixed(1)}%  ${e.seconds.toFixed(1)} s  ${e.imagesPerSecond.toFixed(0)} img/s\n`);
        },
      });
      const p = r.provenance;
      const report = {
        backbone: r.dir,
        model: r.modelFile,
        id: r.manifest.id,
        sha256: r.manifest.sha256,
        featureDim: r.manifest.output.featureDim,
        backend: r.backend,
        seconds: r.seconds,
        accuracy: { trainNoisyLabels: p.trainAccNoisy, trainCleanLabels: p.trainAccClean, ...(p.testAcc !== undefined ? { test: p.testAcc } : {}) },
        provenance: p,
      };
      if (args.values.json === true) printJson(io, report);
      else {
        io.out(`wrote ${r.dir} (${r.manifest.id}, D=${report.featureDim}) in ${r.seconds.toFixed(1)} s on ${r.backend}\n`);
        io.out(`noise: ${p.noise.type} γ=${p.noise.ratio}, ${p.flippedCount} of ${p.trainCount} labels changed\n`);
        io.out(`accuracy: train/noisy ${(100 * p.trainAccNoisy).toFixed(2)}%, train/clean ${(100 * p.trainAccClean).toFixed(2)}%${p.testAcc !== undefined ? `, test ${(100 * p.testAcc).toFixed(2)}%` : ''}\n`);
      }
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
};
