/**
 * `nmlab finetune`: white-box tuning (`ft`, `lora`, or the `lp` baseline) of an ONNX backbone
 * on onnxruntime (issue 11, item 3), evaluated on a test set. Inputs are the backbone's float
 * input tensor (N × its input shape) or uint8 images (N×H×W or N×H×W×C) that get the
 * backbone's preprocessing (backbone.json, then the model's input shape).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type Command } from '../command';
import { FinetuneMethodName, type FinetuneOverrides } from '../../shared/contract/finetune';
import { TunePreset } from '../../shared/contract/tuning';
import { NmlabError } from '../../shared/errors';
import { readNpy, type NpyArray } from '../../core/arrays/npy';
import { labelVector } from '../../core/arrays/validate';
import { loadBackbone, type BackboneRef } from '../../core/features/backbone';
import { FeatureExtractor } from '../../core/features/extract';
import { imageAt } from '../../core/images/image';
import { batchDims, preprocessBatch } from '../../core/images/preprocess';
import { finetune, type TensorSet } from '../../core/finetune/run';

const USAGE = `Usage: nmlab finetune --backbone MODEL --train-inputs X.npy --train-labels y.npy
                      --test-inputs X2.npy --test-labels y2.npy --method ft|lora|lp
                      [--rank R] [--nmtune paper|reference] [--epochs E] [--lr L] [--batch-size B]
                      [--seed S] [--output NAME] [--save TUNED.onnx] [--json]

Tunes an ONNX backbone's own weights with a linear head on its feature output, on onnxruntime
(the execution provider \`nmlab doctor\` reports; NMLAB_EP forces one), and evaluates on the
test set.

  --backbone MODEL   an .onnx file, a backbone.json, or a folder holding backbone.json
  --method           ft: full fine-tuning; lora: rank-R adapters on every Conv and linear
                     weight, merged into the weights on export; lp: the head alone on the
                     frozen backbone (the baseline, same pipeline)
  --*-inputs X.npy   float32: the backbone's input tensor, batch first; uint8: images
                     (N×H×W or N×H×W×C) preprocessed as backbone.json / the model declares
  --*-labels y.npy   integer class labels
  --rank R           LoRA rank (default: each layer's output width / 8, at least 1)
  --nmtune PRESET    add NMTune's terms on the features Z (paper §6): paper (λ = 0.01 each,
                     L_SVD on σ₁) or reference (the authors' weights, top-5 L_SVD, element-mean
                     L_MSE; one view: no image augmentations)
  --epochs E         default 30
  --lr L             default: ft 1e-4, lora 2e-4, lp 0.01 (DESIGN §4); AdamW, cosine schedule
  --batch-size B     default 64 (the last incomplete batch of an epoch is dropped)
  --output NAME      the feature output the head sits on (default: backbone.json's, else the first)
  --save FILE        write the tuned network (LoRA merged, head included) as ONNX
  --json             print {accuracy, macroF1, method, provider, epochs, seconds, ...}
`;

/** A split as the backbone's float input: float32 as is, uint8 images through its preprocessing. */
async function loadSplit(ref: BackboneRef, inputsFile: string, labelsFile: string, outputNode: string | undefined): Promise<TensorSet> {
  // One after the other, so that when both are unreadable the error always names the inputs file.
  const x: NpyArray = await readNpy(inputsFile);
  const y: NpyArray = await readNpy(labelsFile);
  const labels = labelVector(y, labelsFile);
  const rows = x.shape[0] ?? 0;
  if (rows !== labels.length) throw new NmlabError('BAD_REQUEST', `${inputsFile} has ${rows} samples but ${labelsFile} has ${labels.length} labels`);
  if (x.dtype === 'float32') return { inputs: x.data as Float32Array, sampleShape: x.shape.slice(1), labels, rows, name: inputsFile };
  if (x.dtype !== 'uint8') throw new NmlabError('BAD_FILE', `${inputsFile} is ${x.dtype}; give float32 model inputs or uint8 images`);
  const [, height, width, channels = 1] = x.shape;
  if (!(x.shape.length === 3 || x.shape.length === 4) || (channels !== 1 && channels !== 3)) {
    throw new NmlabError('BAD_FILE', `${inputsFile}: uint8 images must be N×H×W or N×H×W×C with C = 1 or 3, got [${x.shape.join(', ')}]`);
  }
  const fx = await FeatureExtractor.open(ref, { outputNode, threads: 1 });
  try {
    const p = fx.requirePreprocess();
    const batch = { count: rows, height, width, channels: channels as 1 | 3, pixels: x.data as Uint8Array };
    const images = Array.from({ length: rows }, (_, i) => imageAt(batch, i));
    return { inputs: preprocessBatch(images, p), sampleShape: batchDims(p, 1).slice(1), labels, rows, name: inputsFile };
  } finally {
    await fx.release();
  }
}

export const finetuneCommand: Command = {
  name: 'finetune',
  summary: 'fine-tune (ft) or LoRA-tune an ONNX backbone on onnxruntime and evaluate it',
  usage: USAGE,
  options: {
    backbone: { type: 'string' },
    'train-inputs': { type: 'string' },
    'train-labels': { type: 'string' },
    'test-inputs': { type: 'string' },
    'test-labels': { type: 'string' },
    method: { type: 'string' },
    rank: { type: 'string' },
    nmtune: { type: 'string' },
    epochs: { type: 'string' },
    lr: { type: 'string' },
    'batch-size': { type: 'string' },
    seed: { type: 'string' },
    output: { type: 'string' },
    save: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const method = FinetuneMethodName.safeParse(requireOpt(args, 'method'));
    if (!method.success) throw new UsageError(`--method must be one of ${FinetuneMethodName.options.join(', ')}`);
    const overrides: FinetuneOverrides = { method: method.data };
    const nmtune = stringOpt(args, 'nmtune');
    if (nmtune !== undefined) {
      const preset = TunePreset.safeParse(nmtune);
      if (!preset.success) throw new UsageError(`--nmtune must be one of ${TunePreset.options.join(', ')}`);
      overrides.nmtune = preset.data;
    }
    const ints: Array<[string, 'rank' | 'epochs' | 'batchSize' | 'seed']> = [['rank', 'rank'], ['epochs', 'epochs'], ['batch-size', 'batchSize'], ['seed', 'seed']];
    for (const [flag, key] of ints) {
      const v = numberOpt(args, flag);
      if (v === undefined) continue;
      if (!Number.isInteger(v) || v < 0) throw new UsageError(`--${flag} must be a non-negative integer, got ${v}`);
      overrides[key] = v;
    }
    const lr = numberOpt(args, 'lr');
    if (lr !== undefined) {
      if (!(lr > 0)) throw new UsageError(`--lr must be positive, got ${lr}`);
      overrides.lr = lr;
    }
    const ref = await loadBackbone(requireOpt(args, 'backbone'));
    const outputNode = stringOpt(args, 'output') ?? ref.manifest?.output.node;
    const [train, test] = await Promise.all([
      loadSplit(ref, requireOpt(args, 'train-inputs'), requireOpt(args, 'train-labels'), outputNode),
      loadSplit(ref, requireOpt(args, 'test-inputs'), requireOpt(args, 'test-labels'), outputNode),
    ]);
    const json = args.values.json === true;
    const bytes = new Uint8Array(await readFile(ref.onnxFile));
    const { result, model } = await finetune(bytes, train, test, overrides, {
      featureOutput: outputNode,
      inputName: ref.manifest?.input?.node,
      onEpoch: (e) => {
        if (!json) io.err(`  epoch ${e.epoch}/${e.epochs}: loss ${e.meanLoss.toFixed(4)}, train accuracy ${(100 * e.trainAccuracy).toFixed(1)} % (${e.seconds.toFixed(1)} s)\n`);
      },
    });
    const save = stringOpt(args, 'save');
    if (save) await writeFile(save, model);
    if (json) printJson(io, result);
    else {
      io.out(`${result.method} on ${result.provider}: accuracy ${(100 * result.accuracy).toFixed(2)} %, macro-F1 ${(100 * result.macroF1).toFixed(2)} % on ${result.testRows} test samples\n`);
      io.out(`  ${result.epochs} epochs in ${result.seconds.toFixed(1)} s, ${result.trainableParams} trainable parameters${result.adapted.length ? `, LoRA on ${result.adapted.length} weights` : ''}\n`);
      if (save) io.out(`  tuned model written to ${save}\n`);
    }
    return 0;
  },
};
