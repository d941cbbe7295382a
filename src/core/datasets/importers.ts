/**
 * Importing data into a project as datasets: image folders, MNIST-style IDX pairs and feature
 * files (.npy or CSV with labels). Everything is read and validated before anything is
 * written, and the write itself is all-or-nothing (see store.ts), so a failed import loses
 * nothing already in the project (DESIGN §7).
 */
import { basename, extname } from 'node:path';
import type { DatasetManifest, SplitInfo } from '../../shared/contract/datasets';
import { NmlabError } from '../../shared/errors';
import { readNpy } from '../arrays/npy';
import { readFeaturesCsv } from '../arrays/csv';
import { checkSameCount, classCountOf, featureMatrix, inferNumClasses, labelVector, unseenClassWarning } from '../arrays/validate';
import { readImageFile } from '../images/decode';
import { toChannels, type ImageBatch, type RawImage } from '../images/image';
import { resizeImage } from '../images/preprocess';
import { readIdxPair } from './idx';
import { scanImageFolder } from './imageFolder';
import { stratifiedSplit } from './split';
import { freeDatasetId, writeDataset, type NewDatasetArrays } from './store';

/** Options every import takes. */
export interface ImportCommon {
  name: string;
  /** Dataset id; derived from the name when absent. */
  id?: string;
  /** Class names; `class-0`, `class-1`, … (or folder names) when absent. */
  classes?: string[];
  /** Make a stratified train/test split with this test fraction (unless the source gives one). */
  testFraction?: number;
  seed?: number;
  onProgress?: (done: number, total: number, message: string) => void;
  signal?: AbortSignal;
}

function cancelled(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) throw new NmlabError('CANCELLED', `import cancelled at ${where}; nothing was written`);
}

function classNames(given: string[] | undefined, k: number, what: string): string[] {
  if (!given) return Array.from({ length: k }, (_, i) => `class-${i}`);
  if (given.length < k) throw new NmlabError('BAD_REQUEST', `${given.length} class names given but ${what} has labels up to ${k - 1}; give ${k} names`);
  return given;
}

function makeSplit(labels: Int32Array, opts: ImportCommon): { split?: Uint8Array; info?: SplitInfo } {
  if (opts.testFraction === undefined || opts.testFraction === 0) return {};
  const seed = opts.seed ?? 0;
  const split = stratifiedSplit(labels, opts.testFraction, seed);
  const test = split.reduce((a, b) => a + b, 0);
  return { split, info: { file: 'split.npy', train: labels.length - test, test, method: 'stratified', testFraction: opts.testFraction, seed } };
}

function checkClassesPresent(labels: Int32Array, classes: string[], what: string, rows?: Uint8Array, want?: number): void {
  const counts = new Array<number>(classes.length).fill(0);
  for (let i = 0; i < labels.length; i++) if (!rows || rows[i] === want) counts[labels[i]]++;
  const empty = counts.flatMap((c, i) => (c === 0 ? [classes[i]] : []));
  if (empty.length) throw new NmlabError('BAD_FILE', `${what} has no samples of class ${empty.map((c) => `"${c}"`).join(', ')}; every class needs samples`);
}

/** How an image-folder import treats images whose size differs from the target. */
export type SizePolicy = 'resize' | 'error';

export interface ImageFolderOptions extends ImportCommon {
  dir: string;
  /** Store images at this height×width; default: the most common size in the folder. */
  size?: [number, number];
  /** What to do with images of another size (default `resize`, stretching bilinearly). */
  onSizeMismatch?: SizePolicy;
  /** Force 1 or 3 channels; default 3 if any image is in colour, else 1. */
  channels?: 1 | 3;
}

/** Import `dir/<class>/*.png|jpg` or `dir/<domain>/<class>/*`. */
export async function importImageFolder(projectDir: string, opts: ImageFolderOptions): Promise<DatasetManifest> {
  const scan = await scanImageFolder(opts.dir);
  const total = scan.files.length;
  const decoded: RawImage[] = [];
  for (let i = 0; i < total; i++) {
    if (i % 64 === 0) {
      cancelled(opts.signal, `image ${i} of ${total}`);
      opts.onProgress?.(i, total, 'decoding images');
    }
    decoded.push(await readImageFile(scan.files[i].path));
  }
  const sizes = new Map<string, number>();
  for (const im of decoded) sizes.set(`${im.height}x${im.width}`, (sizes.get(`${im.height}x${im.width}`) ?? 0) + 1);
  const [height, width] =
    opts.size ?? ([...sizes.entries()].sort((a, b) => b[1] - a[1])[0][0].split('x').map(Number) as [number, number]);
  const channels: 1 | 3 = opts.channels ?? (decoded.some((d) => d.channels === 3) ? 3 : 1);
  const notes: string[] = [];
  const per = height * width * channels;
  const pixels = new Uint8Array(total * per);
  let resized = 0;
  decoded.forEach((im, i) => {
    if (im.height !== height || im.width !== width) {
      if ((opts.onSizeMismatch ?? 'resize') === 'error') {
        throw new NmlabError(
          'BAD_FILE',
          `${scan.files[i].path} is ${im.width}×${im.height} but the dataset's images are ${width}×${height}; resize it, or import with mixed sizes resized`,
        );
      }
      resized++;
    }
    pixels.set(resizeImage(toChannels(im, channels), height, width).data, i * per);
  });
  if (resized) notes.push(`${resized} image(s) resized to ${width}×${height} (bilinear)`);
  if (scan.skipped.length) notes.push(`${scan.skipped.length} non-image file(s) skipped, e.g. ${scan.skipped.slice(0, 3).join(', ')}`);
  const labels = Int32Array.from(scan.files, (f) => f.label);
  const domains = Int32Array.from(scan.files, (f) => f.domain);
  const { split, info } = makeSplit(labels, opts);
  opts.onProgress?.(total, total, 'writing dataset');
  const images: ImageBatch = { count: total, height, width, channels, pixels };
  const id = opts.id ?? (await freeDatasetId(projectDir, opts.name));
  return writeDataset(
    projectDir,
    id,
    {
      name: opts.name,
      kind: 'images',
      source: { type: 'image-folder', path: opts.dir, layout: scan.layout },
      classes: opts.classes ? classNames(opts.classes, scan.classes.length, opts.dir) : scan.classes,
      domains: scan.domains,
      image: { height, width, channels },
      ...(info ? { split: info } : {}),
      provenance: { notes },
    },
    { labels, images, ...(scan.domains.length > 1 ? { domains } : {}), ...(split ? { split } : {}) },
  );
}

export interface IdxOptions extends ImportCommon {
  images: string;
  labels: string;
  /** A second (test) pair, e.g. MNIST's t10k files: becomes the test split. */
  testImages?: string;
  testLabels?: string;
}

/** Import an IDX image/label pair (and optionally a test pair, stored as the given split). */
export async function importIdx(projectDir: string, opts: IdxOptions): Promise<DatasetManifest> {
  if ((opts.testImages === undefined) !== (opts.testLabels === undefined)) {
    throw new NmlabError('BAD_REQUEST', 'give both the test images and the test labels IDX files, or neither');
  }
  const train = await readIdxPair(opts.images, opts.labels);
  const test = opts.testImages && opts.testLabels ? await readIdxPair(opts.testImages, opts.testLabels) : undefined;
  cancelled(opts.signal, 'reading IDX files');
  const { height, width, channels } = train.images;
  if (test && (test.images.height !== height || test.images.width !== width || test.images.channels !== channels)) {
    throw new NmlabError(
      'BAD_FILE',
      `${opts.testImages} holds ${test.images.height}×${test.images.width}×${test.images.channels} images but ${opts.images} holds ${height}×${width}×${channels}; the pair must match`,
    );
  }
  const count = train.images.count + (test?.images.count ?? 0);
  const pixels = test ? concatBytes(train.images.pixels, test.images.pixels) : train.images.pixels;
  const labels = test ? concatInt32(train.labels, test.labels) : train.labels;
  const k = Math.max(classCountOf(train.labels, opts.labels), test ? inferNumClasses(test.labels) : 0);
  const classes = classNames(opts.classes, k, opts.labels);
  checkClassesPresent(train.labels, classes, opts.labels);
  const unseen = test ? unseenClassWarning(train.labels, test.labels, opts.labels, opts.testLabels!) : null;
  let split: Uint8Array | undefined;
  let info: SplitInfo | undefined;
  if (test) {
    split = new Uint8Array(count);
    split.fill(1, train.images.count);
    info = { file: 'split.npy', train: train.images.count, test: test.images.count, method: 'given' };
  } else ({ split, info } = makeSplit(labels, opts));
  const id = opts.id ?? (await freeDatasetId(projectDir, opts.name));
  return writeDataset(
    projectDir,
    id,
    {
      name: opts.name,
      kind: 'images',
      source: { type: 'idx', images: opts.images, labels: opts.labels, ...(test ? { testImages: opts.testImages, testLabels: opts.testLabels } : {}) },
      classes,
      domains: ['default'],
      image: { height, width, channels: channels as 1 | 3 },
      ...(info ? { split: info } : {}),
      ...(unseen ? { provenance: { notes: [unseen] } } : {}),
    },
    { labels, images: { count, height, width, channels: channels as 1 | 3, pixels }, ...(split ? { split } : {}) },
  );
}

export interface FeatureFileOptions extends ImportCommon {
  /** `.npy` (M×D) or `.csv`. */
  features: string;
  /** Labels `.npy`; for CSV, omit it and name `labelColumn` instead. */
  labels?: string;
  labelColumn?: string | number;
}

/** Import a feature matrix (e.g. embeddings from a black-box API) with its labels. */
export async function importFeatures(projectDir: string, opts: FeatureFileOptions): Promise<DatasetManifest> {
  let data: Float32Array;
  let m: number;
  let d: number;
  let labels: Int32Array | undefined;
  const ext = extname(opts.features).toLowerCase();
  if (ext === '.csv') {
    const csv = await readFeaturesCsv(opts.features, opts.labelColumn !== undefined ? { labelColumn: opts.labelColumn } : {});
    ({ m, d } = csv);
    data = Float32Array.from(csv.data);
    labels = csv.labels;
  } else if (ext === '.npy') {
    const fm = featureMatrix(await readNpy(opts.features), opts.features);
    ({ m, d } = fm);
    data = fm.data instanceof Float32Array ? fm.data : Float32Array.from(fm.data);
  } else {
    throw new NmlabError('BAD_REQUEST', `${opts.features}: features must be a .npy or .csv file`);
  }
  if (opts.labels) {
    labels = labelVector(await readNpy(opts.labels), opts.labels);
    checkSameCount(opts.features, m, opts.labels, labels.length);
  }
  if (!labels) throw new NmlabError('BAD_REQUEST', `no labels for ${opts.features}: give a labels .npy, or the CSV's label column`);
  const k = classCountOf(labels, opts.labels ?? opts.features);
  const classes = classNames(opts.classes, k, opts.labels ?? opts.features);
  checkClassesPresent(labels, classes, opts.labels ?? opts.features);
  const { split, info } = makeSplit(labels, opts);
  const id = opts.id ?? (await freeDatasetId(projectDir, opts.name));
  const arrays: NewDatasetArrays = { labels, features: { data, dim: d }, ...(split ? { split } : {}) };
  return writeDataset(
    projectDir,
    id,
    {
      name: opts.name,
      kind: 'features',
      source: { type: 'features', features: opts.features, labels: opts.labels ?? `${basename(opts.features)}#label-column` },
      classes,
      domains: ['default'],
      featureDim: d,
      ...(info ? { split: info } : {}),
    },
    arrays,
  );
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function concatInt32(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
