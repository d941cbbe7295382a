/**
 * A pre-trained NMLab CNN on disk (DESIGN §5 `backbones/`, STYLE convention 4):
 *
 *   <dir>/model.onnx       the feature extractor (+ head), src/core/pretrain/onnx.ts
 *   <dir>/backbone.json    id (`arch.tag`), sha256 of model.onnx, preprocess, output node and
 *                          feature dim, licence, provenance (noise type, γ, seed, flipped
 *                          count, realised transition matrix, epochs, accuracies, ...)
 *   <dir>/weights.json     tfjs weights manifest (spec, names, shapes, byte offsets) and
 *   <dir>/weights.bin      the float32 values, to resume training or re-export
 *
 * Every file is written atomically; backbone.json last, so a folder whose backbone.json
 * exists is complete.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BACKBONE_SCHEMA_VERSION, BackboneManifest, type BackboneManifestInput } from '../../shared/contract/backbones';
import { NmlabError } from '../../shared/errors';
import { writeFileAtomic, writeJsonAtomic } from '../fs/atomic';
import { CNN_FEATURE_NAME, CNN_INPUT_NAME, exportCnnToOnnx } from './onnx';
import { CnnModel, checkCnnSpec, type CnnSpec } from './cnn';

export const CNN_ARCH = 'nmlab-cnn';
export const MODEL_FILE = 'model.onnx';
export const WEIGHTS_FILE = 'weights.json';
export const WEIGHTS_BIN = 'weights.bin';
const WEIGHTS_FORMAT = 'nmlab-cnn-weights';

/** `nmlab-cnn.g05` style id: γ in percent, two digits (`g00`, `g05`, `g20`, `g100`), plus an optional suffix. */
export function backboneIdFor(ratio: number, suffix?: string): string {
  const pct = Math.round(ratio * 100);
  const tag = `g${String(pct).padStart(2, '0')}${suffix ? `-${suffix.replace(/[^A-Za-z0-9_-]/g, '-')}` : ''}`;
  return `${CNN_ARCH}.${tag}`;
}

/** The provenance NMLab records for a backbone it pre-trained (stored under backbone.json's `provenance`). */
export type PretrainProvenance = {
  source: 'nmlab-pretrain';
  createdAt: string;
  dataset: string;
  /** The label noise drawn on the training labels; asymmetric noise adds its classes and class map. */
  noise: { type: string; ratio: number; seed: number; classes?: number[]; map?: Record<number, number> };
  /** sha256 of the noisy training labels it was trained on (little-endian int32, row order; src/core/noise). */
  labelsSha256?: string;
  /** Samples whose label the noise changed, and the realised K×K transition matrix P(noisy=j | clean=i). */
  flippedCount: number;
  transitionMatrix: number[][];
  prng?: string;
  seed: number;
  trainCount: number;
  epochs: number;
  arch: CnnSpec;
  hyper: Record<string, unknown>;
  backend: string;
  seconds: number;
  /** Accuracy of the final model (eval mode) on the noisy training labels it was trained on. */
  trainAccNoisy: number;
  /** … and on the clean training labels. */
  trainAccClean: number;
  /** Share of the flipped training labels the final model reproduces (./memorisation.ts); null when none were flipped. */
  memorised?: number | null;
  /** … and share of them it predicts with their true class. */
  corrected?: number | null;
  /** Accuracy on a clean held-out set, when one was given. */
  testAcc?: number;
  testCount?: number;
  history: Array<{ epoch: number; loss: number; trainAcc: number; seconds: number }>;
};

interface WeightsManifest {
  format: typeof WEIGHTS_FORMAT;
  version: 1;
  spec: CnnSpec;
  tensors: Array<{ name: string; shape: number[]; offset: number; length: number }>;
}

export interface SaveBackboneOptions {
  id: string;
  provenance: PretrainProvenance;
  /** [0,1]-unit mean and std the model was trained with. */
  normalization: { mean: number[]; std: number[] };
  license?: string;
}

export interface SavedBackbone {
  dir: string;
  manifest: BackboneManifest;
  modelFile: string;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Write model.onnx, weights and backbone.json into `dir` (created if needed). */
export async function saveBackbone(dir: string, model: CnnModel, opts: SaveBackboneOptions): Promise<SavedBackbone> {
  await mkdir(dir, { recursive: true });
  const onnx = exportCnnToOnnx(model, {
    metadata: { 'nmlab.id': opts.id, 'nmlab.noise': JSON.stringify({ type: opts.provenance.noise.type, ratio: opts.provenance.noise.ratio, seed: opts.provenance.noise.seed }) },
    docString: `NMLab ${opts.id}: pre-trained on ${opts.provenance.dataset} with ${opts.provenance.noise.type} label noise γ=${opts.provenance.noise.ratio}`,
  });
  const modelFile = join(dir, MODEL_FILE);
  await writeFileAtomic(modelFile, onnx);
  await writeWeights(dir, model);
  const [c, h, w] = model.spec.inputSize;
  const draft: BackboneManifestInput = {
    schemaVersion: BACKBONE_SCHEMA_VERSION,
    id: opts.id,
    file: MODEL_FILE,
    sha256: sha256(onnx),
    format: 'onnx',
    input: { node: CNN_INPUT_NAME },
    preprocess: { inputSize: [c, h, w], mean: opts.normalization.mean, std: opts.normalization.std, layout: 'nchw', scale: 1 / 255, interpolation: 'bilinear', cropPct: 1 },
    output: { node: CNN_FEATURE_NAME, featureDim: model.featureDim },
    license: opts.license ?? 'MIT',
    provenance: opts.provenance,
  };
  const manifest = BackboneManifest.parse(draft);
  await writeJsonAtomic(join(dir, 'backbone.json'), manifest);
  return { dir, manifest, modelFile };
}

/** Write the tfjs weights (all variables and BN buffers) as weights.json + weights.bin. */
export async function writeWeights(dir: string, model: CnnModel): Promise<void> {
  const named = model.namedTensors();
  const names = Object.keys(named).sort();
  const tensors: WeightsManifest['tensors'] = [];
  let offset = 0;
  for (const name of names) {
    tensors.push({ name, shape: named[name].shape, offset, length: named[name].size });
    offset += named[name].size;
  }
  const bin = new Float32Array(offset);
  for (const t of tensors) bin.set(named[t.name].dataSync() as Float32Array, t.offset);
  await writeFileAtomic(join(dir, WEIGHTS_BIN), new Uint8Array(bin.buffer));
  const manifest: WeightsManifest = { format: WEIGHTS_FORMAT, version: 1, spec: model.spec, tensors };
  await writeJsonAtomic(join(dir, WEIGHTS_FILE), manifest);
}

/** Rebuild a CnnModel from weights.json + weights.bin in `dir` (to resume or re-export). */
export async function loadWeights(dir: string): Promise<CnnModel> {
  const file = join(dir, WEIGHTS_FILE);
  let manifest: WeightsManifest;
  let raw: Buffer;
  try {
    manifest = JSON.parse(await readFile(file, 'utf8')) as WeightsManifest;
    raw = await readFile(join(dir, WEIGHTS_BIN));
  } catch (err) {
    throw new NmlabError('BAD_FILE', `cannot read CNN weights in ${dir} (${err instanceof Error ? err.message : String(err)}); expected ${WEIGHTS_FILE} and ${WEIGHTS_BIN}`);
  }
  if (manifest.format !== WEIGHTS_FORMAT || manifest.version !== 1 || !Array.isArray(manifest.tensors)) {
    throw new NmlabError('BAD_FILE', `${file} is not an NMLab CNN weights manifest (format ${String(manifest.format)})`);
  }
  checkCnnSpec(manifest.spec);
  const total = manifest.tensors.reduce((a, t) => Math.max(a, t.offset + t.length), 0);
  if (raw.byteLength !== total * 4) throw new NmlabError('BAD_FILE', `${join(dir, WEIGHTS_BIN)} has ${raw.byteLength} bytes, ${file} describes ${total * 4}`);
  const floats = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const model = new CnnModel(manifest.spec, 0);
  const values: Record<string, Float32Array> = {};
  for (const t of manifest.tensors) values[t.name] = floats.subarray(t.offset, t.offset + t.length);
  try {
    model.assign(values);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const missing = Object.keys(model.namedTensors()).filter((n) => !(n in values));
  if (missing.length) {
    model.dispose();
    throw new NmlabError('BAD_FILE', `${file} lacks tensors ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  }
  return model;
}
