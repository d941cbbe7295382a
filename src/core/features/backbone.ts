/**
 * Backbones on disk (STYLE.md convention 4): a model file with a `backbone.json` beside it
 * holding its `arch.tag` id, sha256, preprocessing and feature output. `loadBackbone` accepts
 * a folder, a backbone.json or a bare .onnx (whose sibling backbone.json is used if it names
 * that file); `importBackbone` copies a model into `backbones/<id>/` of a project.
 */
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  BACKBONE_SCHEMA_VERSION,
  BackboneManifest,
  type BackboneManifestInput,
  type OnnxInspection,
  type PreprocessSpec,
  type TensorInfo,
} from '../../shared/contract/backbones';
import { NmlabError } from '../../shared/errors';
import { writeJsonAtomic } from '../fs/atomic';
import { parseJsonChecked } from '../fs/json';
import { resolveInside } from '../projects/resolveInside';
import { errnoCode, fsError } from '../fs/errors';
import { inspectOnnx, type BackboneRef } from './onnx';

export const BACKBONE_FILE = 'backbone.json';
export const BACKBONES_FOLDER = 'backbones';

export type { BackboneRef } from './onnx';

/** Read and validate a backbone.json. */
export async function readBackboneManifest(file: string): Promise<BackboneManifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw fsError(err, 'read', file);
  }
  const manifest = parseJsonChecked(file, text, BackboneManifest, 'backbone.json');
  if (manifest.schemaVersion > BACKBONE_SCHEMA_VERSION) {
    throw new NmlabError('UNSUPPORTED', `${file} has schema version ${manifest.schemaVersion}, newer than this NMLab understands; update NMLab`);
  }
  return manifest;
}

/** Write a backbone.json atomically after validating it. */
export async function writeBackboneManifest(file: string, manifest: BackboneManifestInput): Promise<BackboneManifest> {
  const m = BackboneManifest.parse(manifest);
  await writeJsonAtomic(file, m);
  return m;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new NmlabError('NOT_FOUND', `backbone ${p} does not exist`);
    throw fsError(err, 'open', p);
  }
}

/** Locate a backbone from a folder, a backbone.json, or an .onnx file. */
export async function loadBackbone(path: string): Promise<BackboneRef> {
  if (await isDir(path)) return fromManifest(join(path, BACKBONE_FILE));
  if (extname(path).toLowerCase() === '.json') return fromManifest(path);
  const sibling = join(dirname(path), BACKBONE_FILE);
  try {
    await stat(sibling);
  } catch {
    return { onnxFile: path };
  }
  const manifest = await readBackboneManifest(sibling);
  // A backbone.json for another file in the same folder says nothing about this one.
  return manifest.file === basename(path) ? { onnxFile: path, manifest, manifestFile: sibling } : { onnxFile: path };
}

async function fromManifest(file: string): Promise<BackboneRef> {
  const manifest = await readBackboneManifest(file);
  const onnxFile = await resolveInside(dirname(file), manifest.file).catch(() => {
    throw new NmlabError('BAD_FILE', `${file} names model "${manifest.file}", which is outside its folder; keep the model beside backbone.json`);
  });
  return { onnxFile, manifest, manifestFile: file };
}

/** Product of the non-batch dims of an output, or null when any is symbolic. */
export function staticFeatureDim(out: TensorInfo): number | null {
  const rest = out.shape.slice(1);
  if (rest.some((d) => typeof d !== 'number')) return null;
  return (rest as number[]).reduce((a, b) => a * b, 1);
}

/** The output to read features from: the named one (checked), else the model's only/first output. */
export function pickOutput(insp: OnnxInspection, node?: string): TensorInfo {
  if (node !== undefined) {
    const o = insp.outputs.find((x) => x.name === node);
    if (!o) throw new NmlabError('BAD_REQUEST', `${insp.file} has no output "${node}"; its outputs are ${insp.outputs.map((x) => `"${x.name}"`).join(', ')}`);
    return o;
  }
  return insp.outputs[0];
}

export interface ImportBackboneOptions {
  /** `arch.tag`; default from the file name. */
  id?: string;
  outputNode?: string;
  preprocess?: PreprocessSpec;
  license?: string;
  provenance?: BackboneManifest['provenance'];
  /** Feature width when the output shape is symbolic (found by a trial run otherwise). */
  featureDim?: number;
}

/** Copy an .onnx into `backbones/<id>/model.onnx` with its backbone.json; all-or-nothing. */
export async function importBackbone(projectDir: string, onnxFile: string, opts: ImportBackboneOptions = {}): Promise<BackboneManifest> {
  const insp = await inspectOnnx(onnxFile);
  const out = pickOutput(insp, opts.outputNode);
  const id = opts.id ?? basename(onnxFile, extname(onnxFile)).replace(/[^A-Za-z0-9_-]+/g, '-');
  let featureDim = opts.featureDim ?? staticFeatureDim(out);
  if (featureDim === null) {
    const { FeatureExtractor } = await import('./extract');
    const fx = await FeatureExtractor.open({ onnxFile }, { outputNode: out.name, overrides: opts.preprocess ?? {} });
    try {
      featureDim = await fx.probeFeatureDim();
    } finally {
      await fx.release();
    }
  }
  const dir = await resolveInside(projectDir, join(BACKBONES_FOLDER, id));
  try {
    await stat(dir);
    throw new NmlabError('ALREADY_EXISTS', `backbone "${id}" already exists in ${projectDir}; pick another id`);
  } catch (err) {
    if (err instanceof NmlabError) throw err;
  }
  const manifest = BackboneManifest.parse({
    schemaVersion: BACKBONE_SCHEMA_VERSION,
    id,
    file: 'model.onnx',
    sha256: insp.sha256,
    format: 'onnx',
    input: { node: insp.inputs[0].name },
    preprocess: opts.preprocess ?? {},
    output: { node: out.name, featureDim },
    ...(opts.license ? { license: opts.license } : {}),
    provenance: opts.provenance ?? { source: 'import', createdAt: new Date().toISOString(), notes: `imported from ${onnxFile}` },
  });
  const tmp = await resolveInside(projectDir, join(BACKBONES_FOLDER, `.tmp-${id}-${randomBytes(4).toString('hex')}`));
  try {
    await mkdir(tmp, { recursive: true });
    await copyFile(onnxFile, join(tmp, 'model.onnx'));
    await writeJsonAtomic(join(tmp, BACKBONE_FILE), manifest);
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err instanceof NmlabError ? err : fsError(err, 'write the backbone into', dir);
  }
  return manifest;
}
