/**
 * The Fashion-MNIST subset shipped in resources/demo/fashion-mnist (made by
 * scripts/make-demo-data.ts): where it is, what it holds, and how to import it (or a smaller
 * class-balanced part of it) into a project as a dataset with the given train/test split.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { DatasetManifest } from '../../shared/contract/datasets';
import { NmlabError } from '../../shared/errors';
import { appRoot } from '../paths';
import { readIdxPair } from './idx';
import { freeDatasetId, writeDataset } from './store';

const DemoManifest = z.object({
  name: z.string(),
  classes: z.array(z.string()),
  train: z.object({ count: z.number(), perClass: z.number(), images: z.string(), labels: z.string() }),
  test: z.object({ count: z.number(), perClass: z.number(), images: z.string(), labels: z.string() }),
  imageSize: z.tuple([z.number(), z.number()]),
  sha256: z.record(z.string(), z.string()),
});
export type DemoManifest = z.infer<typeof DemoManifest>;

/** Folder of the shipped demo data (`NMLAB_DEMO_DATA` overrides). */
export function demoDataDir(): string {
  return process.env.NMLAB_DEMO_DATA ?? join(appRoot(), 'resources', 'demo', 'fashion-mnist');
}

export async function readDemoManifest(dir = demoDataDir()): Promise<DemoManifest> {
  const file = join(dir, 'demo.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new NmlabError('NOT_FOUND', `the demo data is missing or unreadable (${file}: ${err instanceof Error ? err.message : String(err)}); rebuild it with \`npx tsx scripts/make-demo-data.ts\``);
  }
  const p = DemoManifest.safeParse(raw);
  if (!p.success) throw new NmlabError('BAD_FILE', `${file} is not a valid demo manifest`);
  return p.data;
}

/** First `perClass` rows of each class, in file order (the rule the shipped subset uses). */
export function firstPerClass(labels: Int32Array, perClass: number, numClasses: number): Int32Array {
  const taken = new Array<number>(numClasses).fill(0);
  const rows: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    if (taken[labels[i]] < perClass) {
      taken[labels[i]]++;
      rows.push(i);
    }
  }
  return Int32Array.from(rows);
}

export interface DemoImportOptions {
  id?: string;
  /** At most the shipped 600. */
  trainPerClass?: number;
  /** At most the shipped 100. */
  testPerClass?: number;
}

/** Import the demo Fashion-MNIST subset (optionally smaller) as one dataset with its given split. */
export async function importDemoDataset(projectDir: string, opts: DemoImportOptions = {}): Promise<DatasetManifest> {
  const dir = demoDataDir();
  const m = await readDemoManifest(dir);
  const k = m.classes.length;
  const trainPer = Math.min(opts.trainPerClass ?? m.train.perClass, m.train.perClass);
  const testPer = Math.min(opts.testPerClass ?? m.test.perClass, m.test.perClass);
  const parts = await Promise.all(
    [
      [m.train, trainPer],
      [m.test, testPer],
    ].map(async ([p, per]) => {
      const part = p as DemoManifest['train'];
      const { images, labels } = await readIdxPair(join(dir, part.images), join(dir, part.labels));
      const rows = firstPerClass(labels, per as number, k);
      const size = images.height * images.width;
      const px = new Uint8Array(rows.length * size);
      rows.forEach((r, i) => px.set(images.pixels.subarray(r * size, (r + 1) * size), i * size));
      return { px, labels: Int32Array.from(rows, (r) => labels[r]), count: rows.length, h: images.height, w: images.width };
    }),
  );
  const [train, test] = parts;
  const count = train.count + test.count;
  const pixels = new Uint8Array(count * train.h * train.w);
  pixels.set(train.px, 0);
  pixels.set(test.px, train.px.length);
  const labels = new Int32Array(count);
  labels.set(train.labels, 0);
  labels.set(test.labels, train.count);
  const split = new Uint8Array(count);
  split.fill(1, train.count);
  const id = opts.id ?? (await freeDatasetId(projectDir, 'fashion-mnist-demo'));
  return writeDataset(
    projectDir,
    id,
    {
      name: `Fashion-MNIST demo (${trainPer}+${testPer} per class)`,
      kind: 'images',
      source: { type: 'idx', images: join(dir, m.train.images), labels: join(dir, m.train.labels), testImages: join(dir, m.test.images), testLabels: join(dir, m.test.labels) },
      classes: m.classes,
      domains: ['default'],
      image: { height: train.h, width: train.w, channels: 1 },
      split: { file: 'split.npy', train: train.count, test: test.count, method: 'given' },
      provenance: { notes: ['Fashion-MNIST by Zalando Research (MIT), https://github.com/zalandoresearch/fashion-mnist'] },
    },
    { labels, images: { count, height: train.h, width: train.w, channels: 1, pixels }, split },
  );
}
