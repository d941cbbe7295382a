/**
 * Datasets on disk (DESIGN §5): `datasets/<id>/dataset.json` plus `.npy` arrays. A new
 * dataset is written into a hidden temporary folder beside the others and renamed into place
 * only once every file is complete, so a failed or killed import leaves the project as it was.
 * Derived datasets (noise, fractions) keep only what changed and read the rest from their parent.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  DATASET_SCHEMA_VERSION,
  DatasetId,
  DatasetManifest,
  type DatasetSummary,
} from '../../shared/contract/datasets';
import { NmlabError } from '../../shared/errors';
import { readNpy, writeNpy, type NpyArray } from '../arrays/npy';
import { featureMatrix, labelVector } from '../arrays/validate';
import { writeJsonAtomic } from '../fs/atomic';
import { readJsonChecked } from '../fs/json';
import { listFolder } from '../fs/list';
import { appVersion } from '../paths';
import { resolveInside } from '../projects/resolveInside';
import { causeCode, errnoCode, freeBytes, fsError } from '../fs/errors';
import type { ImageBatch } from '../images/image';

export const DATASETS_FOLDER = 'datasets';
export const DATASET_FILE = 'dataset.json';

/** A dataset with its arrays in memory. */
export interface LoadedDataset {
  manifest: DatasetManifest;
  labels: Int32Array;
  images?: ImageBatch;
  /** Row-major count × featureDim. */
  features?: Float32Array;
  /** Per-row index into `manifest.domains`; all zero for a single-domain set. */
  domains: Int32Array;
  /** Per-row 0 = train, 1 = test; absent when the set has no split. */
  split?: Uint8Array;
}

/** Absolute folder of dataset `id` in the project, checked to stay inside it. */
export async function datasetDir(projectDir: string, id: string): Promise<string> {
  const parsed = DatasetId.safeParse(id);
  if (!parsed.success) throw new NmlabError('BAD_REQUEST', `"${id}" is not a dataset id: ${parsed.error.issues[0]?.message}`);
  return resolveInside(projectDir, join(DATASETS_FOLDER, id));
}

/** Read and validate `dataset.json` of dataset `id`. */
export async function readDatasetManifest(projectDir: string, id: string): Promise<DatasetManifest> {
  const dir = await datasetDir(projectDir, id);
  const file = join(dir, DATASET_FILE);
  const manifest = await readJsonChecked(file, DatasetManifest, 'dataset manifest');
  if (!manifest) throw new NmlabError('NOT_FOUND', `no dataset "${id}" in ${projectDir} (${file} is missing); see \`nmlab dataset list\``);
  if (manifest.schemaVersion > DATASET_SCHEMA_VERSION) {
    throw new NmlabError('UNSUPPORTED', `${file} has schema version ${manifest.schemaVersion}, newer than this NMLab understands (${DATASET_SCHEMA_VERSION}); update NMLab`);
  }
  return manifest;
}

/** All datasets of a project, sorted by id. Folders that are not valid datasets are skipped. */
export async function listDatasets(projectDir: string): Promise<DatasetSummary[]> {
  const root = await resolveInside(projectDir, DATASETS_FOLDER);
  const names = await listFolder(root, 'list datasets in');
  const out: DatasetSummary[] = [];
  for (const name of names.sort()) {
    if (!DatasetId.safeParse(name).success) continue;
    try {
      const m = await readDatasetManifest(projectDir, name);
      out.push(summarize(m));
    } catch {
      /* a broken folder is not a dataset; `dataset show` reports why */
    }
  }
  return out;
}

export function summarize(m: DatasetManifest): DatasetSummary {
  return {
    id: m.id,
    name: m.name,
    kind: m.kind,
    count: m.count,
    classes: m.classes.length,
    domains: m.domains,
    parent: m.derived?.parent ?? null,
    op: m.derived?.op ?? null,
  };
}

/** A dataset name as stored: trimmed, 1–200 characters; only spaces is no name. */
export function checkDatasetName(name: string): string {
  const clean = name.trim();
  if (!clean) throw new NmlabError('BAD_REQUEST', `a dataset needs a name; "${name}" has only spaces`);
  if (clean.length > 200) throw new NmlabError('BAD_REQUEST', `a dataset name has at most 200 characters (got ${clean.length})`);
  return clean;
}

/** A free id derived from `name` (lower-case, `-` for other characters), suffixed -2, -3, … if taken. */
export async function freeDatasetId(projectDir: string, name: string): Promise<string> {
  const base =
    name
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^[-_]+|-+$/g, '')
      .slice(0, 60) || 'dataset';
  for (let k = 1; ; k++) {
    const id = k === 1 ? base : `${base}-${k}`;
    if (!(await exists(await datasetDir(projectDir, id)))) return id;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The arrays of a new dataset; each is written as `<key>.npy`. */
export interface NewDatasetArrays {
  labels: Int32Array;
  images?: ImageBatch;
  features?: { data: Float32Array; dim: number };
  domains?: Int32Array;
  split?: Uint8Array;
  indices?: Int32Array;
  /** Extra arrays (e.g. `flipped`), written as `<name>.npy`. */
  extra?: Record<string, NpyArray>;
}

/** Manifest fields the caller decides; the store fills id, version, dates, counts and array names. */
export type NewDatasetManifest = Omit<DatasetManifest, 'schemaVersion' | 'id' | 'createdAt' | 'count' | 'classCounts' | 'arrays' | 'provenance'> & {
  provenance?: { notes?: string[]; [k: string]: unknown };
};

/**
 * Write a complete dataset: every array and then dataset.json into `datasets/.tmp-*`, then one
 * rename to `datasets/<id>`. Fails with ALREADY_EXISTS if the id is taken; on any failure the
 * temporary folder is removed and the project is untouched.
 */
export async function writeDataset(projectDir: string, id: string, draft: NewDatasetManifest, arrays: NewDatasetArrays): Promise<DatasetManifest> {
  const finalDir = await datasetDir(projectDir, id);
  if (await exists(finalDir)) throw new NmlabError('ALREADY_EXISTS', `dataset "${id}" already exists in ${projectDir}; pick another name or id`);
  const cleanName = checkDatasetName(draft.name);
  const count = arrays.labels.length;
  checkRows(count, arrays);
  const classCounts = new Array<number>(draft.classes.length).fill(0);
  for (let i = 0; i < count; i++) {
    const y = arrays.labels[i];
    if (y < 0 || y >= draft.classes.length) throw new NmlabError('INTERNAL', `dataset "${id}": label ${y} at row ${i} outside its ${draft.classes.length} classes`);
    classCounts[y]++;
  }
  const { provenance, ...rest } = draft;
  const manifest: DatasetManifest = DatasetManifest.parse({
    ...rest,
    name: cleanName,
    schemaVersion: DATASET_SCHEMA_VERSION,
    id,
    createdAt: new Date().toISOString(),
    count,
    classCounts,
    arrays: {
      labels: 'labels.npy',
      ...(arrays.images ? { images: 'images.npy' } : {}),
      ...(arrays.features ? { features: 'features.npy' } : {}),
      ...(arrays.domains ? { domains: 'domains.npy' } : {}),
      ...(arrays.indices ? { indices: 'indices.npy' } : {}),
    },
    provenance: { tool: 'nmlab', version: appVersion(), notes: [], ...provenance },
  });

  const root = await resolveInside(projectDir, DATASETS_FOLDER);
  const tmp = join(root, `.tmp-${id}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(tmp, { recursive: true });
    await writeNpy(join(tmp, 'labels.npy'), { dtype: 'int32', shape: [count], data: arrays.labels });
    if (arrays.images) {
      const b = arrays.images;
      await writeNpy(join(tmp, 'images.npy'), { dtype: 'uint8', shape: [b.count, b.height, b.width, b.channels], data: b.pixels });
    }
    if (arrays.features) await writeNpy(join(tmp, 'features.npy'), { dtype: 'float32', shape: [count, arrays.features.dim], data: arrays.features.data });
    if (arrays.domains) await writeNpy(join(tmp, 'domains.npy'), { dtype: 'int32', shape: [count], data: arrays.domains });
    if (arrays.split) await writeNpy(join(tmp, 'split.npy'), { dtype: 'uint8', shape: [count], data: arrays.split });
    if (arrays.indices) await writeNpy(join(tmp, 'indices.npy'), { dtype: 'int32', shape: [count], data: arrays.indices });
    for (const [name, arr] of Object.entries(arrays.extra ?? {})) await writeNpy(join(tmp, `${name}.npy`), arr);
    await writeJsonAtomic(join(tmp, DATASET_FILE), manifest);
    try {
      await rename(tmp, finalDir);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new NmlabError('ALREADY_EXISTS', `dataset "${id}" was created meanwhile in ${projectDir}; pick another id`);
      throw fsError(err, 'move the new dataset into', finalDir);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (causeCode(err) === 'ENOSPC') {
      // Name the folder the user knows and the whole dataset's size, not the temporary file.
      throw fsError(err instanceof NmlabError ? err.cause : err, `write dataset "${id}" into`, root, { neededBytes: datasetBytes(count, arrays), freeBytes: await freeBytes(root) });
    }
    throw err;
  }
  return manifest;
}

/** Bytes the arrays of a new dataset take on disk (headers aside). */
function datasetBytes(count: number, a: NewDatasetArrays): number {
  let n = count * 4 + (a.split ? count : 0) + (a.domains ? count * 4 : 0) + (a.indices ? count * 4 : 0);
  if (a.images) n += a.images.pixels.byteLength;
  if (a.features) n += a.features.data.byteLength;
  for (const arr of Object.values(a.extra ?? {})) n += arr.data.byteLength;
  return n;
}

function checkRows(count: number, a: NewDatasetArrays): void {
  const check = (what: string, n: number) => {
    if (n !== count) throw new NmlabError('INTERNAL', `${what} has ${n} rows but there are ${count} labels`);
  };
  if (a.images) check('images', a.images.count);
  if (a.features) check('features', a.features.data.length / a.features.dim);
  if (a.domains) check('domains', a.domains.length);
  if (a.split) check('split', a.split.length);
  if (a.indices) check('indices', a.indices.length);
}

/** Remove a dataset folder (refused while derived datasets point at it). */
export async function deleteDataset(projectDir: string, id: string): Promise<void> {
  const children = (await listDatasets(projectDir)).filter((d) => d.parent === id).map((d) => d.id);
  if (children.length) throw new NmlabError('BAD_REQUEST', `dataset "${id}" has derived datasets (${children.join(', ')}); delete them first`);
  const dir = await datasetDir(projectDir, id);
  await readDatasetManifest(projectDir, id);
  await rm(dir, { recursive: true, force: true });
}

async function readArray(dir: string, rel: string, id: string): Promise<NpyArray> {
  // Array names come from the manifest: keep them inside the dataset folder.
  const file = await resolveInside(dir, rel);
  try {
    return await readNpy(file);
  } catch (err) {
    if (err instanceof NmlabError) throw new NmlabError(err.code, `dataset "${id}": ${err.message}`);
    throw err;
  }
}

/**
 * Load a dataset's arrays. Derived sets without their own pixels or features take their
 * parent's rows (selected by `indices` when present); such sets also inherit the parent's
 * split and domains unless they store their own. Labels are always the set's own.
 */
export async function loadDataset(projectDir: string, id: string, depth = 0): Promise<LoadedDataset> {
  if (depth > 32) throw new NmlabError('BAD_FILE', `dataset "${id}": its chain of parents is too deep (a cycle?)`);
  const manifest = await readDatasetManifest(projectDir, id);
  const dir = await datasetDir(projectDir, id);
  const labelsFile = join(dir, manifest.arrays.labels);
  const labels = labelVector(await readArray(dir, manifest.arrays.labels, id), labelsFile, manifest.classes.length);
  const n = labels.length;
  if (n !== manifest.count) throw new NmlabError('BAD_FILE', `${labelsFile} has ${n} labels but dataset.json says ${manifest.count}`);
  const rowsOf = (what: string, m: number) => {
    if (m !== n) throw new NmlabError('BAD_FILE', `dataset "${id}": ${what} has ${m} rows but there are ${n} labels`);
  };

  let parent: LoadedDataset | undefined;
  let indices: Int32Array | undefined;
  const needParent = !manifest.arrays.images && !manifest.arrays.features;
  if (needParent) {
    if (!manifest.derived) throw new NmlabError('BAD_FILE', `dataset "${id}" has neither images nor features and no parent`);
    parent = await loadDataset(projectDir, manifest.derived.parent, depth + 1);
    if (manifest.arrays.indices) {
      const arr = await readArray(dir, manifest.arrays.indices, id);
      indices = arr.data instanceof Int32Array ? arr.data : Int32Array.from(arr.data as ArrayLike<number>, Number);
      rowsOf('indices.npy', indices.length);
      for (const r of indices) {
        if (r < 0 || r >= parent.labels.length) throw new NmlabError('BAD_FILE', `dataset "${id}": indices.npy row ${r} is outside its parent's ${parent.labels.length} rows`);
      }
    } else rowsOf(`parent "${parent.manifest.id}"`, parent.labels.length);
  }
  const pick = <T extends Uint8Array | Int32Array | Float32Array>(a: T, width: number): T => (indices ? gatherRows(a, width, indices) : a);

  let images: ImageBatch | undefined;
  let features: Float32Array | undefined;
  if (manifest.arrays.images) {
    const arr = await readArray(dir, manifest.arrays.images, id);
    if (arr.dtype !== 'uint8' || arr.shape.length !== 4) throw new NmlabError('BAD_FILE', `dataset "${id}": images.npy must be uint8 N×H×W×C, got ${arr.dtype} (${arr.shape.join(', ')})`);
    const [count, height, width, channels] = arr.shape;
    rowsOf('images.npy', count);
    if (channels !== 1 && channels !== 3) throw new NmlabError('BAD_FILE', `dataset "${id}": images.npy has ${channels} channels; 1 or 3 expected`);
    images = { count, height, width, channels, pixels: arr.data as Uint8Array };
  } else if (manifest.arrays.features) {
    const file = join(dir, manifest.arrays.features);
    const fm = featureMatrix(await readArray(dir, manifest.arrays.features, id), file);
    rowsOf('features.npy', fm.m);
    features = fm.data instanceof Float32Array ? fm.data : Float32Array.from(fm.data);
  } else if (parent) {
    if (parent.images) {
      const p = parent.images;
      const per = p.height * p.width * p.channels;
      images = { ...p, count: n, pixels: pick(p.pixels, per) };
    }
    if (parent.features) features = pick(parent.features, parent.features.length / parent.labels.length);
  }

  let domains: Int32Array;
  if (manifest.arrays.domains) {
    const arr = await readArray(dir, manifest.arrays.domains, id);
    domains = labelVector(arr, join(dir, manifest.arrays.domains), manifest.domains.length);
    rowsOf('domains.npy', domains.length);
  } else if (parent && sameList(parent.manifest.domains, manifest.domains)) domains = pick(parent.domains, 1);
  else domains = new Int32Array(n);

  let split: Uint8Array | undefined;
  if (manifest.split) {
    const arr = await readArray(dir, manifest.split.file, id);
    if (arr.dtype !== 'uint8' || arr.shape.length !== 1) throw new NmlabError('BAD_FILE', `dataset "${id}": ${manifest.split.file} must be a uint8 vector`);
    split = arr.data as Uint8Array;
    rowsOf(manifest.split.file, split.length);
  } else if (parent?.split) split = pick(parent.split, 1);

  return { manifest, labels, images, features, domains, split };
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Rows `idx` of a row-major array with `width` elements per row. */
export function gatherRows<T extends Uint8Array | Int32Array | Float32Array>(a: T, width: number, idx: ArrayLike<number>): T {
  const out = new (a.constructor as new (n: number) => T)(idx.length * width);
  for (let i = 0; i < idx.length; i++) out.set(a.subarray(idx[i] * width, (idx[i] + 1) * width), i * width);
  return out;
}

/** Row indices of a split (`all` = every row). A set without a split has every row in `train`. */
export function splitRows(ds: LoadedDataset, which: 'train' | 'test' | 'all'): Int32Array {
  const n = ds.labels.length;
  if (which === 'all') return Int32Array.from({ length: n }, (_, i) => i);
  if (!ds.split) {
    if (which === 'train') return Int32Array.from({ length: n }, (_, i) => i);
    throw new NmlabError('BAD_REQUEST', `dataset "${ds.manifest.id}" has no train/test split; make one first (import with --test-fraction)`);
  }
  const want = which === 'train' ? 0 : 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (ds.split[i] === want) out.push(i);
  return Int32Array.from(out);
}
