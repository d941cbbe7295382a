/**
 * The `datasets` service of the contract: list a project's datasets, describe one with sample
 * images and per-split counts, and preview an import source without writing anything (the
 * import wizard's "look before you import"). Writes (import, noise, corruptions, splits) run
 * as `dataset` jobs in a worker (src/core/jobs/kinds/dataset.ts).
 */
import { basename, extname } from 'node:path';
import type { DatasetDetail, DatasetPreview, ImportSource, ThumbnailGrid } from '../../shared/contract/datasetsService';
import { NmlabError } from '../../shared/errors';
import { readNpy } from '../arrays/npy';
import { readFeaturesCsv } from '../arrays/csv';
import { checkSameCount, classCountOf, featureMatrix, inferNumClasses, labelVector, unseenClassWarning } from '../arrays/validate';
import { readIdxPair } from '../datasets/idx';
import { scanImageFolder } from '../datasets/imageFolder';
import { datasetDir, listDatasets, loadDataset } from '../datasets/store';
import { readImageFile } from '../images/decode';
import { imageAt, type RawImage } from '../images/image';
import { resolveInside } from '../projects/resolveInside';
import { buildGrid, firstRowsPerCell } from './thumbnails';

/** Per-class counts of `labels`, optionally only over rows where `keep(i)` holds. */
function countClasses(labels: ArrayLike<number>, k: number, keep?: (i: number) => boolean): number[] {
  const out = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) if (!keep || keep(i)) out[labels[i]]++;
  return out;
}

function countDomainClasses(labels: ArrayLike<number>, domains: ArrayLike<number>, numDomains: number, k: number): number[][] {
  const out = Array.from({ length: numDomains }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < labels.length; i++) out[domains[i]][labels[i]]++;
  return out;
}

function emptyClassNote(counts: number[], classes: string[], where: string): string[] {
  const empty = counts.flatMap((c, i) => (c === 0 ? [classes[i]] : []));
  return empty.length ? [`${where} has no samples of ${empty.map((c) => `"${c}"`).join(', ')}: the import will refuse it (every class needs samples)`] : [];
}

/** A name for the dataset from its source (the folder or file name without extensions). */
function nameFrom(path: string): string {
  let name = basename(path.replace(/[\\/]+$/, ''));
  while (extname(name)) name = basename(name, extname(name));
  return name.replace(/-?(idx\d?)?-?ubyte$/i, '').replace(/[-_]images$/i, '') || 'dataset';
}

async function previewImageFolder(source: Extract<ImportSource, { type: 'image-folder' }>, perCell: number): Promise<DatasetPreview> {
  const scan = await scanImageFolder(source.dir);
  const k = scan.classes.length;
  const labels = scan.files.map((f) => f.label);
  const domains = scan.files.map((f) => f.domain);
  const cells = firstRowsPerCell(labels, domains, scan.domains.length, k, perCell);
  // Decode only the sampled images: a preview of a big folder stays quick. The import itself
  // decodes (and so checks) every file.
  const decoded = new Map<number, RawImage>();
  for (const byClass of cells) for (const rows of byClass) for (const r of rows) decoded.set(r, await readImageFile(scan.files[r].path));
  const sizes = new Map<string, number>();
  for (const im of decoded.values()) sizes.set(`${im.width}×${im.height}`, (sizes.get(`${im.width}×${im.height}`) ?? 0) + 1);
  const common = [...decoded.values()].sort((a, b) => (sizes.get(`${b.width}×${b.height}`) ?? 0) - (sizes.get(`${a.width}×${a.height}`) ?? 0))[0];
  const channels: 1 | 3 = [...decoded.values()].some((d) => d.channels === 3) ? 3 : 1;
  const notes: string[] = [];
  if (sizes.size > 1) {
    notes.push(`sampled images come in ${sizes.size} sizes (${[...sizes.entries()].map(([s, n]) => `${s}: ${n}`).join(', ')}); the import resizes them to the most common size unless sizes must match`);
  }
  if (scan.skipped.length) notes.push(`${scan.skipped.length} file(s) that are not PNG or JPEG will be skipped, e.g. ${scan.skipped.slice(0, 3).join(', ')}`);
  notes.push(`${decoded.size} of ${scan.files.length} images decoded for this preview; the import reads every file and names any it cannot decode`);
  const grid = common
    ? buildGrid({
        numDomains: scan.domains.length,
        numClasses: k,
        sourceHeight: common.height,
        sourceWidth: common.width,
        channels,
        rowsOf: (d, c) => cells[d][c].map((r) => ({ image: decoded.get(r)!, source: basename(scan.files[r].path) })),
      })
    : null;
  return {
    source,
    kind: 'images',
    classes: scan.classes,
    domains: scan.domains,
    count: scan.files.length,
    classCounts: countClasses(labels, k),
    domainClassCounts: countDomainClasses(labels, domains, scan.domains.length, k),
    testClassCounts: null,
    image: common ? { height: common.height, width: common.width, channels } : null,
    featureDim: null,
    grid,
    notes,
    suggestedName: nameFrom(source.dir),
  };
}

async function previewIdx(source: Extract<ImportSource, { type: 'idx' }>, perCell: number): Promise<DatasetPreview> {
  if ((source.testImages === undefined) !== (source.testLabels === undefined)) {
    throw new NmlabError('BAD_REQUEST', 'give both the test images and the test labels IDX files, or neither');
  }
  const train = await readIdxPair(source.images, source.labels);
  const test = source.testImages && source.testLabels ? await readIdxPair(source.testImages, source.testLabels) : undefined;
  const { height, width, channels } = train.images;
  if (test && (test.images.height !== height || test.images.width !== width || test.images.channels !== channels)) {
    throw new NmlabError(
      'BAD_FILE',
      `${source.testImages} holds ${test.images.height}×${test.images.width}×${test.images.channels} images but ${source.images} holds ${height}×${width}×${channels}; the pair must match`,
    );
  }
  const k = Math.max(classCountOf(train.labels, source.labels), test ? inferNumClasses(test.labels) : 0);
  const unseen = test ? unseenClassWarning(train.labels, test.labels, source.labels, source.testLabels!) : null;
  const classes = Array.from({ length: k }, (_, i) => `class-${i}`);
  const trainCounts = countClasses(train.labels, k);
  const testCounts = test ? countClasses(test.labels, k) : null;
  const cells = firstRowsPerCell(train.labels, new Int32Array(train.labels.length), 1, k, perCell);
  const batch = { ...train.images, channels: channels as 1 | 3 };
  const grid = buildGrid({
    numDomains: 1,
    numClasses: k,
    sourceHeight: height,
    sourceWidth: width,
    channels: channels as 1 | 3,
    rowsOf: (d, c) => cells[d][c].map((r) => ({ image: imageAt(batch, r), source: `${basename(source.images)} #${r}` })),
  });
  const classCounts = testCounts ? trainCounts.map((c, i) => c + testCounts[i]) : trainCounts;
  return {
    source,
    kind: 'images',
    classes,
    domains: ['default'],
    count: train.labels.length + (test?.labels.length ?? 0),
    classCounts,
    domainClassCounts: [classCounts],
    testClassCounts: testCounts,
    image: { height, width, channels },
    featureDim: null,
    grid,
    notes: [
      ...emptyClassNote(trainCounts, classes, basename(source.labels)),
      ...(test ? [`${test.labels.length} rows of ${basename(source.testImages!)} become the test split`] : []),
      ...(unseen ? [unseen] : []),
    ],
    suggestedName: nameFrom(source.images),
  };
}

async function previewFeatures(source: Extract<ImportSource, { type: 'features' }>): Promise<DatasetPreview> {
  let m: number;
  let d: number;
  let labels: Int32Array | undefined;
  const ext = extname(source.features).toLowerCase();
  if (ext === '.csv') {
    const csv = await readFeaturesCsv(source.features, source.labelColumn !== undefined ? { labelColumn: /^-?\d+$/.test(source.labelColumn) ? Number(source.labelColumn) : source.labelColumn } : {});
    ({ m, d } = csv);
    labels = csv.labels;
  } else if (ext === '.npy') {
    ({ m, d } = featureMatrix(await readNpy(source.features), source.features));
  } else {
    throw new NmlabError('BAD_REQUEST', `${source.features}: features must be a .npy or .csv file`);
  }
  if (source.labels) {
    labels = labelVector(await readNpy(source.labels), source.labels);
    checkSameCount(source.features, m, source.labels, labels.length);
  }
  if (!labels) throw new NmlabError('BAD_REQUEST', `no labels for ${source.features}: give a labels .npy, or the CSV's label column`);
  const k = classCountOf(labels, source.labels ?? source.features);
  const classes = Array.from({ length: k }, (_, i) => `class-${i}`);
  const classCounts = countClasses(labels, k);
  return {
    source,
    kind: 'features',
    classes,
    domains: ['default'],
    count: m,
    classCounts,
    domainClassCounts: [classCounts],
    testClassCounts: null,
    image: null,
    featureDim: d,
    grid: null,
    notes: emptyClassNote(classCounts, classes, basename(source.labels ?? source.features)),
    suggestedName: nameFrom(source.features),
  };
}

/** Read an import source and describe it; nothing is written. Errors name the offending file. */
export async function previewImport(source: ImportSource, perCell: number): Promise<DatasetPreview> {
  switch (source.type) {
    case 'image-folder':
      return previewImageFolder(source, perCell);
    case 'idx':
      return previewIdx(source, perCell);
    case 'features':
      return previewFeatures(source);
  }
}

/** A dataset with counts per split and domain, its derived datasets, and sample images. */
export async function describeDataset(projectDir: string, id: string, perCell: number): Promise<DatasetDetail> {
  const ds = await loadDataset(projectDir, id);
  const m = ds.manifest;
  const k = m.classes.length;
  const children = (await listDatasets(projectDir)).filter((c) => c.parent === id);
  const split = ds.split;
  const train = countClasses(ds.labels, k, split ? (i) => split[i] === 0 : undefined);
  const test = split ? countClasses(ds.labels, k, (i) => split[i] === 1) : null;
  let flipped: Set<number> | null = null;
  if (m.derived?.op === 'noise') {
    const file = await resolveInside(await datasetDir(projectDir, id), m.derived.noise.flippedFile);
    const arr = await readNpy(file);
    flipped = new Set(Array.from(arr.data as ArrayLike<number>, Number));
  }
  let grid: ThumbnailGrid | null = null;
  const shownFlipped: number[] = [];
  if (ds.images && perCell > 0) {
    const images = ds.images;
    const cells = firstRowsPerCell(ds.labels, ds.domains, m.domains.length, k, perCell, flipped ?? undefined);
    grid = buildGrid({
      numDomains: m.domains.length,
      numClasses: k,
      sourceHeight: images.height,
      sourceWidth: images.width,
      channels: images.channels,
      rowsOf: (d, c) =>
        cells[d][c].map((r) => {
          if (flipped?.has(r)) shownFlipped.push(r);
          return { image: imageAt(images, r), source: `row ${r}` };
        }),
    });
  }
  return {
    manifest: m,
    children,
    splitClassCounts: { train, test },
    domainClassCounts: countDomainClasses(ds.labels, ds.domains, m.domains.length, k),
    grid,
    flippedRows: flipped ? shownFlipped.sort((a, b) => a - b) : null,
  };
}

