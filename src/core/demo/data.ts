/**
 * The demo's datasets, all recorded in the project (DESIGN §5): the embedded Fashion-MNIST
 * subset as imported, the pre-training and downstream class subsets cut from it, and the OOD
 * corruption domains of the downstream test images (src/core/datasets/derive.ts). The noisy
 * pre-training labels per γ are the study's own noise stage.
 *
 * Every id is fixed by the config (a hash of the settings that shape the set), so a second
 * run finds what the first wrote and nothing is made twice.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { DatasetManifest } from '../../shared/contract/datasets';
import { NmlabError } from '../../shared/errors';
import { deriveCorruptions } from '../datasets/derive';
import { importIdx } from '../datasets/importers';
import { gatherRows, loadDataset, readDatasetManifest, writeDataset, type LoadedDataset } from '../datasets/store';
import { appRoot } from '../paths';
import { hashOf } from '../experiments/graph';
import { FASHION_CLASSES, type DemoConfig } from './config';

/** resources/demo/fashion-mnist/demo.json, as scripts/make-demo-data.ts writes it. */
const DemoDataManifest = z.object({
  name: z.string(),
  classes: z.array(z.string()).length(10),
  train: z.object({ count: z.number().int(), images: z.string(), labels: z.string() }),
  test: z.object({ count: z.number().int(), images: z.string(), labels: z.string() }),
});

/** The embedded data's folder (override with NMLAB_DEMO_DATA, e.g. for a larger subset). */
export function demoDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.NMLAB_DEMO_DATA && env.NMLAB_DEMO_DATA.trim() ? env.NMLAB_DEMO_DATA : join(appRoot(), 'resources', 'demo', 'fashion-mnist');
}

export const SOURCE_DATASET = 'fashion-mnist-demo';
/** The whole Fashion-MNIST (60 000 train, 10 000 test images), imported from Debian's files. */
export const FULL_SOURCE_DATASET = 'fashion-mnist';

/** Where Debian's `dataset-fashion-mnist` package installs the four IDX files. */
export const DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';
const FULL_FILES = { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz', testImages: 't10k-images-idx3-ubyte.gz', testLabels: 't10k-labels-idx1-ubyte.gz' };

/** The data a demo runs on: the whole Fashion-MNIST when installed, else the embedded subset. */
export type DemoSource = { kind: 'full'; dir: string } | { kind: 'embedded'; dir: string };

/**
 * The whole Fashion-MNIST when its four IDX files are in NMLAB_FASHION_MNIST or Debian's
 * folder (`apt install dataset-fashion-mnist`), else the embedded subset (600 train and 100
 * test images per class) — or `dataDir` when the caller names one (tests).
 */
export function demoSource(dataDir?: string, env: NodeJS.ProcessEnv = process.env, debianDir = DEBIAN_FASHION_MNIST): DemoSource {
  if (dataDir) return { kind: 'embedded', dir: dataDir };
  for (const dir of [env.NMLAB_FASHION_MNIST?.trim(), debianDir]) {
    if (dir && Object.values(FULL_FILES).every((f) => existsSync(join(dir, f)))) return { kind: 'full', dir };
  }
  return { kind: 'embedded', dir: demoDataDir(env) };
}

/** Images per class in the embedded subset (scripts/make-demo-data.ts). */
const EMBEDDED_PER_CLASS = { train: 600, test: 100 };

/**
 * The config as the source can serve it: on the embedded subset every per-class count is
 * capped at what it holds (600 train, 100 test), with a note saying so; on the whole
 * Fashion-MNIST the config as given.
 */
export function fitConfigToSource(cfg: DemoConfig, source: DemoSource): { config: DemoConfig; note: string | null } {
  if (source.kind === 'full') return { config: cfg, note: null };
  const t = EMBEDDED_PER_CLASS;
  const config: DemoConfig = {
    ...cfg,
    pretrainPerClass: Math.min(cfg.pretrainPerClass, t.train),
    pretrainTestPerClass: Math.min(cfg.pretrainTestPerClass, t.test),
    downstreamTrainPerClass: Math.min(cfg.downstreamTrainPerClass, t.train),
    downstreamTestPerClass: Math.min(cfg.downstreamTestPerClass, t.test),
  };
  const capped = (['pretrainPerClass', 'pretrainTestPerClass', 'downstreamTrainPerClass', 'downstreamTestPerClass'] as const).filter((k) => config[k] !== cfg[k]);
  const note = capped.length
    ? `the whole Fashion-MNIST is not installed (\`apt install dataset-fashion-mnist\`, or NMLAB_FASHION_MNIST=DIR with its four IDX files): running on the embedded subset, capped ${capped.map((k) => `${k} ${cfg[k]} → ${config[k]}`).join(', ')}; the intervals are wider than the protocol's`
    : null;
  return { config, note };
}

/** Import the embedded subset (train and test IDX pairs, the test pair as the given split), once. */
export async function importDemoData(projectDir: string, dataDir = demoDataDir(), source: DemoSource = { kind: 'embedded', dir: dataDir }): Promise<DatasetManifest> {
  const id = source.kind === 'full' ? FULL_SOURCE_DATASET : SOURCE_DATASET;
  const existing = await readDatasetManifest(projectDir, id).catch(() => null);
  if (existing) return existing;
  if (source.kind === 'full') {
    const f = (k: keyof typeof FULL_FILES) => join(source.dir, FULL_FILES[k]);
    return importIdx(projectDir, { id, name: 'Fashion-MNIST', classes: FASHION_CLASSES, images: f('images'), labels: f('labels'), testImages: f('testImages'), testLabels: f('testLabels') });
  }
  const file = join(dataDir, 'demo.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new NmlabError('NOT_FOUND', `the demo data is missing or unreadable (${file}: ${err instanceof Error ? err.message : String(err)}); rebuild it with \`npx tsx scripts/make-demo-data.ts\``);
  }
  const parsed = DemoDataManifest.safeParse(raw);
  if (!parsed.success) throw new NmlabError('BAD_FILE', `${file} is not a demo data manifest: ${parsed.error.issues[0]?.message}`);
  const m = parsed.data;
  return importIdx(projectDir, {
    id: SOURCE_DATASET,
    name: m.name,
    classes: m.classes,
    images: join(dataDir, m.train.images),
    labels: join(dataDir, m.train.labels),
    testImages: join(dataDir, m.test.images),
    testLabels: join(dataDir, m.test.labels),
  });
}

/** Ids of everything the config makes. */
export interface DemoDatasetIds {
  source: string;
  pretrain: string;
  downstream: string;
  ood: string;
}

export function demoDatasetIds(cfg: DemoConfig, source: DemoSource['kind'] = 'embedded'): DemoDatasetIds {
  // The embedded source keeps the ids it always had; the whole set's subsets hash their source too.
  const from = source === 'full' ? { s: FULL_SOURCE_DATASET } : {};
  const hp = hashOf({ c: cfg.pretrainClasses, n: cfg.pretrainPerClass, t: cfg.pretrainTestPerClass, ...from }).slice(0, 8);
  const hd = hashOf({ c: cfg.downstreamClasses, n: cfg.downstreamTrainPerClass, t: cfg.downstreamTestPerClass, ...from }).slice(0, 8);
  const ho = hashOf({ d: hd, c: cfg.corruptions, s: cfg.corruptionSeed }).slice(0, 8);
  return {
    source: source === 'full' ? FULL_SOURCE_DATASET : SOURCE_DATASET,
    pretrain: `demo-pretrain-${hp}`,
    downstream: `demo-downstream-${hd}`,
    ood: `demo-ood-${ho}`,
  };
}

/**
 * Rows of `classes` in the source set: the first `trainPer` training rows and `testPer` test
 * rows of each class, in file order (the files are shuffled already). Labels are renumbered
 * 0..k−1 in the order of `classes`.
 */
function pickClassRows(src: LoadedDataset, classes: number[], trainPer: number, testPer: number): { rows: Int32Array; labels: Int32Array; split: Uint8Array } {
  if (!src.split) throw new NmlabError('BAD_FILE', `dataset "${src.manifest.id}" has no train/test split`);
  const rows: number[] = [];
  const labels: number[] = [];
  const split: number[] = [];
  for (const [part, per] of [
    [0, trainPer],
    [1, testPer],
  ] as const) {
    const taken = new Map<number, number>(classes.map((c) => [c, 0]));
    for (let i = 0; i < src.labels.length; i++) {
      const y = src.labels[i];
      const t = taken.get(y);
      if (src.split[i] !== part || t === undefined || t >= per) continue;
      taken.set(y, t + 1);
      rows.push(i);
      labels.push(classes.indexOf(y));
      split.push(part);
    }
    for (const [c, t] of taken) {
      if (t < per) throw new NmlabError('BAD_REQUEST', `dataset "${src.manifest.id}" has only ${t} ${part ? 'test' : 'train'} images of class "${FASHION_CLASSES[c]}"; the demo asks for ${per}`);
    }
  }
  return { rows: Int32Array.from(rows), labels: Int32Array.from(labels), split: Uint8Array.from(split) };
}

/** Write a class subset of the source set as its own image dataset (once). */
async function classSubset(projectDir: string, src: LoadedDataset, id: string, name: string, classes: number[], trainPer: number, testPer: number): Promise<DatasetManifest> {
  const existing = await readDatasetManifest(projectDir, id).catch(() => null);
  if (existing) return existing;
  const { rows, labels, split } = pickClassRows(src, classes, trainPer, testPer);
  const im = src.images!;
  const per = im.height * im.width * im.channels;
  const test = split.reduce((a, b) => a + b, 0);
  return writeDataset(
    projectDir,
    id,
    {
      name,
      kind: 'images',
      source: { type: 'derived', parent: src.manifest.id },
      classes: classes.map((c) => src.manifest.classes[c]),
      domains: ['default'],
      image: { height: im.height, width: im.width, channels: im.channels },
      split: { file: 'split.npy', train: labels.length - test, test, method: 'given' },
      provenance: {
        notes: [`classes ${classes.join(', ')} of "${src.manifest.id}", first ${trainPer} train and ${testPer} test images per class in file order; parent rows in parent-rows.npy`],
        demo: { op: 'class-subset', parent: src.manifest.id, classes, trainPerClass: trainPer, testPerClass: testPer },
      },
    },
    {
      labels,
      images: { ...im, count: rows.length, pixels: gatherRows(im.pixels, per, rows) },
      split,
      extra: { 'parent-rows': { dtype: 'int32', shape: [rows.length], data: rows } },
    },
  );
}

/** Make (or find) the source, pre-training, downstream and OOD datasets. */
export async function prepareDatasets(projectDir: string, cfg: DemoConfig, source: DemoSource): Promise<DemoDatasetIds> {
  const overlap = cfg.pretrainClasses.filter((c) => cfg.downstreamClasses.includes(c));
  if (overlap.length) throw new NmlabError('BAD_REQUEST', `pre-training and downstream classes must be disjoint; both have ${overlap.join(', ')}`);
  const ids = demoDatasetIds(cfg, source.kind);
  await importDemoData(projectDir, source.dir, source);
  const src = await loadDataset(projectDir, ids.source);
  await classSubset(projectDir, src, ids.pretrain, 'Demo pre-training set', cfg.pretrainClasses, cfg.pretrainPerClass, cfg.pretrainTestPerClass);
  await classSubset(projectDir, src, ids.downstream, 'Demo downstream task', cfg.downstreamClasses, cfg.downstreamTrainPerClass, cfg.downstreamTestPerClass);
  if (!(await readDatasetManifest(projectDir, ids.ood).catch(() => null))) {
    await deriveCorruptions(projectDir, ids.downstream, {
      id: ids.ood,
      name: 'Demo OOD domains (downstream test images)',
      corruptions: cfg.corruptions,
      seed: cfg.corruptionSeed,
      split: 'test',
      includeClean: true,
    });
  }
  return ids;
}
