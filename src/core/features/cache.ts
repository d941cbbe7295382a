/**
 * The feature cache (DESIGN §3, §5): `features/<key>.npy` (float32, C order, N×D) with a
 * `features/<key>.json` sidecar, keyed by the backbone's sha256, the dataset id, the output
 * node and the hash of the resolved preprocessing, so a cache hit is exactly the same
 * computation. Datasets are immutable once written, which is what makes the id a valid key.
 * Images are read and features written chunk by chunk; memory is bounded by one chunk.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { z } from 'zod';
import { ResolvedPreprocess, type PreprocessSpec } from '../../shared/contract/backbones';
import { NmlabError } from '../../shared/errors';
import { readNpyRows } from '../arrays/npy';
import { writeJsonAtomic } from '../fs/atomic';
import { imageAt, type ImageBatch, type RawImage } from '../images/image';
import { resolveInside } from '../projects/resolveInside';
import { datasetDir, loadDataset, readDatasetManifest } from '../datasets/store';
import { loadBackbone } from './backbone';
import { FeatureExtractor } from './extract';
import { NpyRowWriter } from './npyWriter';
import { sha256File } from './onnx';

export const FEATURES_FOLDER = 'features';

/** What the sidecar `<key>.json` records. */
export const FeatureCacheMeta = z.object({
  key: z.string(),
  file: z.string(),
  dataset: z.string(),
  backbone: z.object({ id: z.string().nullable(), sha256: z.string(), file: z.string() }),
  output: z.string(),
  preprocess: ResolvedPreprocess,
  preprocessHash: z.string(),
  count: z.number().int(),
  featureDim: z.number().int(),
  createdAt: z.string(),
  seconds: z.number(),
});
export type FeatureCacheMeta = z.infer<typeof FeatureCacheMeta>;

/** Stable JSON (sorted keys) so equal objects hash equally. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** 16-hex-digit hash of a resolved preprocessing. */
export function preprocessHash(p: ResolvedPreprocess): string {
  return createHash('sha256').update(canonical(p)).digest('hex').slice(0, 16);
}

/** The cache key of (backbone, dataset, output, preprocessing). */
export function featureKey(backboneSha: string, datasetId: string, output: string, p: ResolvedPreprocess): string {
  const h = createHash('sha256').update(`${backboneSha}\n${datasetId}\n${output}\n${preprocessHash(p)}`).digest('hex').slice(0, 20);
  return `${datasetId}-${h}`;
}

export interface ExtractDatasetOptions {
  /** Backbone folder, backbone.json or .onnx: project-relative, or absolute. */
  backbone: string;
  dataset: string;
  outputNode?: string;
  overrides?: PreprocessSpec;
  batchSize?: number;
  /** Recompute even when the cache has the features. */
  force?: boolean;
  threads?: number;
  onProgress?: (done: number, total: number, message: string) => void;
  signal?: AbortSignal;
}

export interface ExtractDatasetResult {
  meta: FeatureCacheMeta;
  /** Absolute path of the .npy. */
  path: string;
  cached: boolean;
}

/** Rows of a dataset's images, read in chunks where the set stores its own pixels. */
async function imageChunks(projectDir: string, id: string, chunkRows: number): Promise<{ count: number; chunks: () => AsyncGenerator<ImageBatch> }> {
  const m = await readDatasetManifest(projectDir, id);
  if (m.kind !== 'images') throw new NmlabError('BAD_REQUEST', `dataset "${id}" holds features, not images; there is nothing to run a backbone on`);
  if (m.arrays.images) {
    const file = await resolveInside(await datasetDir(projectDir, id), m.arrays.images);
    return {
      count: m.count,
      chunks: async function* () {
        for (let start = 0; start < m.count; start += chunkRows) {
          const a = await readNpyRows(file, start, chunkRows);
          const [count, height, width, channels] = a.shape;
          if (a.dtype !== 'uint8' || (channels !== 1 && channels !== 3)) throw new NmlabError('BAD_FILE', `${file} must be uint8 N×H×W×(1|3)`);
          yield { count, height, width, channels, pixels: a.data as Uint8Array };
        }
      },
    };
  }
  // Derived sets that borrow their parent's pixels: gather them once (uint8, 1/4 the size of float input).
  const ds = await loadDataset(projectDir, id);
  const all = ds.images!;
  const per = all.height * all.width * all.channels;
  return {
    count: all.count,
    chunks: async function* () {
      for (let start = 0; start < all.count; start += chunkRows) {
        const n = Math.min(chunkRows, all.count - start);
        yield { ...all, count: n, pixels: all.pixels.subarray(start * per, (start + n) * per) };
      }
    },
  };
}

async function readMeta(file: string): Promise<FeatureCacheMeta | null> {
  try {
    return FeatureCacheMeta.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch {
    return null;
  }
}

/**
 * Features of every row of a dataset, from the cache or computed now. Features are written to
 * a temporary file and renamed in at the end, so an interrupted run leaves no partial cache.
 */
export async function extractDatasetFeatures(projectDir: string, opts: ExtractDatasetOptions): Promise<ExtractDatasetResult> {
  const t0 = performance.now();
  const backbonePath = isAbsolute(opts.backbone) ? opts.backbone : await resolveInside(projectDir, opts.backbone);
  const ref = await loadBackbone(backbonePath);
  const sha = await sha256File(ref.onnxFile);
  if (ref.manifest && ref.manifest.sha256 !== sha) {
    throw new NmlabError('BAD_FILE', `${ref.onnxFile} has changed since ${ref.manifestFile} was written (sha256 ${sha.slice(0, 12)}… ≠ ${ref.manifest.sha256.slice(0, 12)}…); re-import the backbone`);
  }
  const fx = await FeatureExtractor.open(ref, { outputNode: opts.outputNode, overrides: opts.overrides, threads: opts.threads });
  let writer: NpyRowWriter | undefined;
  try {
    const pre = fx.requirePreprocess();
    const key = featureKey(sha, opts.dataset, fx.output.name, pre);
    const folder = await resolveInside(projectDir, FEATURES_FOLDER);
    const npyPath = join(folder, `${key}.npy`);
    const metaPath = join(folder, `${key}.json`);
    if (!opts.force) {
      const meta = await readMeta(metaPath);
      if (meta && (await stat(npyPath).then(() => true, () => false))) return { meta, path: npyPath, cached: true };
    }
    const batchSize = opts.batchSize ?? 64;
    const src = await imageChunks(projectDir, opts.dataset, batchSize * 8);
    const dim = await fx.probeFeatureDim();
    await mkdir(folder, { recursive: true });
    writer = await NpyRowWriter.create(npyPath, src.count, dim);
    let done = 0;
    opts.onProgress?.(0, src.count, 'extracting features');
    for await (const chunk of src.chunks()) {
      for (let s = 0; s < chunk.count; s += batchSize) {
        if (opts.signal?.aborted) throw new NmlabError('CANCELLED', `feature extraction cancelled after ${done} of ${src.count} images; nothing was cached`);
        const imgs: RawImage[] = [];
        for (let i = s; i < Math.min(s + batchSize, chunk.count); i++) imgs.push(imageAt(chunk, i));
        await writer.append(await fx.runImages(imgs));
        done += imgs.length;
        opts.onProgress?.(done, src.count, 'extracting features');
      }
    }
    await writer.close();
    const meta: FeatureCacheMeta = {
      key,
      file: `${FEATURES_FOLDER}/${key}.npy`,
      dataset: opts.dataset,
      // Project-relative when the model lives in the project, so the folder can be moved (DESIGN §5).
      backbone: { id: ref.manifest?.id ?? null, sha256: sha, file: projectRelative(projectDir, ref.onnxFile) },
      output: fx.output.name,
      preprocess: pre,
      preprocessHash: preprocessHash(pre),
      count: src.count,
      featureDim: dim,
      createdAt: new Date().toISOString(),
      seconds: (performance.now() - t0) / 1000,
    };
    await writeJsonAtomic(metaPath, meta);
    return { meta, path: npyPath, cached: false };
  } catch (err) {
    await writer?.abort();
    throw err;
  } finally {
    await fx.release();
  }
}

function projectRelative(projectDir: string, file: string): string {
  const rel = relative(projectDir, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel.split(sep).join('/') : file;
}
