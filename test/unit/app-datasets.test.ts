/**
 * The app's datasets and backbones services (src/core/backend) and the `dataset` job: the
 * import preview read from the demo's IDX files, checked against the raw bytes unzipped here;
 * thumbnails; the dataset detail of a noise set against its files on disk; a derived split's
 * per-class test counts; asymmetric noise along a class map; a refused import that writes
 * nothing; the backbone list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy } from '../../src/core/arrays/npy';
import { describeDataset, previewImport } from '../../src/core/backend/datasets';
import { listBackbones } from '../../src/core/backend/backbones';
import { firstRowsPerCell, thumbnailSize } from '../../src/core/backend/thumbnails';
import { run as runDatasetJob } from '../../src/core/jobs/kinds/dataset';
import type { JobContext } from '../../src/core/jobs/kinds/types';
import { DatasetJobSpec, type DatasetAction } from '../../src/shared/contract/datasetsService';
import type { DatasetManifest } from '../../src/shared/contract/datasets';
import { NmlabError } from '../../src/shared/errors';

const demo = join(__dirname, '..', '..', 'resources', 'demo', 'fashion-mnist');
const images = join(demo, 't10k-images-idx3-ubyte.gz');
const labels = join(demo, 't10k-labels-idx1-ubyte.gz');
let tmp: string;
let project: string;

const ctx: JobContext = { jobId: 'test', signal: new AbortController().signal, progress: () => undefined, metric: () => undefined, log: () => undefined };
const job = async (action: unknown): Promise<DatasetManifest> =>
  (await runDatasetJob(DatasetJobSpec.parse({ kind: 'dataset', projectDir: project, action: action as DatasetAction }), ctx)) as DatasetManifest;

/** IDX bytes read independently: gunzip, skip the big-endian header (4 + 4·rank bytes). */
async function rawIdx(file: string): Promise<{ dims: number[]; body: Uint8Array }> {
  const b = gunzipSync(await readFile(file));
  const rank = b[3];
  const dims = Array.from({ length: rank }, (_, i) => b.readUInt32BE(4 + 4 * i));
  return { dims, body: b.subarray(4 + 4 * rank) };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-appds-'));
  project = join(tmp, 'proj');
  await mkdir(project);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('thumbnails', () => {
  it('keep small images and shrink the longer side of big ones to 48 px', () => {
    expect(thumbnailSize(28, 28)).toEqual([28, 28]);
    expect(thumbnailSize(224, 224)).toEqual([48, 48]);
    expect(thumbnailSize(100, 50)).toEqual([48, 24]);
  });

  it('pick the first rows of each (domain, class) cell, preferred rows first but at most half', () => {
    const y = [0, 1, 0, 1, 0, 1, 0, 0];
    const d = [0, 0, 0, 0, 1, 1, 1, 1];
    expect(firstRowsPerCell(y, d, 2, 2, 2)).toEqual([
      [
        [0, 2],
        [1, 3],
      ],
      [
        [4, 6],
        [5],
      ],
    ]);
    // Row 7 preferred: it takes one of the two places of cell (1, 0), the first row the other.
    expect(firstRowsPerCell(y, d, 2, 2, 2, new Set([7]))[1][0]).toEqual([4, 7]);
  });
});

describe('import preview', () => {
  it('reads the IDX pair without writing: counts and thumbnails equal the raw file', async () => {
    const p = await previewImport({ type: 'idx', images, labels }, 8);
    const img = await rawIdx(images);
    const lab = await rawIdx(labels);
    expect(p.count).toBe(img.dims[0]);
    const counts = new Array<number>(10).fill(0);
    for (const y of lab.body) counts[y]++;
    expect(p.classCounts).toEqual(counts);
    expect(p.image).toEqual({ height: 28, width: 28, channels: 1 });
    expect(p.grid?.cells).toHaveLength(10);
    // Class 3's first thumbnail is the first image labelled 3, byte for byte (28 px: no resize).
    const first3 = lab.body.indexOf(3);
    const cell = p.grid!.cells.find((c) => c.label === 3)!;
    expect(cell.images).toHaveLength(8);
    expect(Buffer.from(cell.images[0], 'base64').equals(Buffer.from(img.body.subarray(first3 * 784, (first3 + 1) * 784)))).toBe(true);
    expect(await readdir(project)).not.toContain('datasets');
  });

  it('names both files of a mismatched pair', async () => {
    const err = await previewImport({ type: 'idx', images, labels: join(demo, 'train-labels-idx1-ubyte.gz') }, 8).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NmlabError);
    expect((err as Error).message).toMatch(/t10k-images-idx3-ubyte\.gz.*train-labels-idx1-ubyte\.gz/);
  });

  it('previews a labelled CSV of features', async () => {
    const csv = join(tmp, 'f.csv');
    await writeFile(csv, 'a,b,label\n1,2,0\n3,4,1\n5,6,1\n');
    const p = await previewImport({ type: 'features', features: csv, labelColumn: 'label' }, 8);
    expect(p).toMatchObject({ kind: 'features', count: 3, featureDim: 2, classCounts: [1, 2], grid: null });
  });
});

describe('dataset jobs and detail', () => {
  it('import, noise, split and corruptions write new datasets; the detail matches the files', async () => {
    const base = await job({ op: 'import', source: { type: 'idx', images, labels }, name: 'fmnist', id: 'fmnist', testFraction: 0.2, seed: 3 });
    expect(base.split).toMatchObject({ train: 800, test: 200 });

    const noisy = await job({ op: 'noise', dataset: 'fmnist', type: 'symmetric', ratio: 0.2, seed: 5 });
    const d = await describeDataset(project, noisy.id, 4);
    const flipped = new Set(Array.from((await readNpy(join(project, 'datasets', noisy.id, 'flipped.npy'))).data as Int32Array));
    expect(flipped.size).toBe(160);
    // Shown flipped rows are flipped rows; each cell shows at most 2 of its 4 places to them.
    expect(d.flippedRows!.length).toBeGreaterThan(0);
    for (const r of d.flippedRows!) expect(flipped.has(r)).toBe(true);
    const cleanLabels = (await readNpy(join(project, 'datasets', 'fmnist', 'labels.npy'))).data as Int32Array;
    const noisyLabels = (await readNpy(join(project, 'datasets', noisy.id, 'labels.npy'))).data as Int32Array;
    const split = (await readNpy(join(project, 'datasets', 'fmnist', 'split.npy'))).data as Uint8Array;
    const train = new Array<number>(10).fill(0);
    const test = new Array<number>(10).fill(0);
    noisyLabels.forEach((y, i) => (split[i] === 0 ? train : test)[y]++);
    expect(d.splitClassCounts).toEqual({ train, test });
    // Test rows keep their clean labels.
    for (let i = 0; i < split.length; i++) if (split[i] === 1) expect(noisyLabels[i]).toBe(cleanLabels[i]);
    expect((await describeDataset(project, 'fmnist', 0)).children.map((c) => c.id)).toEqual([noisy.id]);

    const resplit = await job({ op: 'split', dataset: 'fmnist', testFraction: 0.3, seed: 1 });
    expect(resplit.derived).toMatchObject({ op: 'split', parent: 'fmnist' });
    const s = await describeDataset(project, resplit.id, 0);
    // 100 per class: 30 of each go to test.
    expect(s.splitClassCounts.test).toEqual(new Array(10).fill(30));
    expect(s.grid).toBeNull();

    const ood = await job({ op: 'corrupt', dataset: 'fmnist', corruptions: [{ name: 'inversion', severity: 3 }], seed: 0 });
    const o = await describeDataset(project, ood.id, 2);
    expect(ood.domains).toEqual(['clean', 'inversion']);
    expect(o.domainClassCounts).toEqual([new Array(10).fill(20), new Array(10).fill(20)]);
    // The inverted thumbnail of a row is 255 minus the clean one.
    const clean = o.grid!.cells.find((c) => c.domain === 0 && c.label === 0)!;
    const inv = o.grid!.cells.find((c) => c.domain === 1 && c.label === 0)!;
    const a = Buffer.from(clean.images[0], 'base64');
    const b = Buffer.from(inv.images[0], 'base64');
    expect(Array.from(b)).toEqual(Array.from(a, (v) => 255 - v));
  });

  it('a refused import leaves the project as it was', async () => {
    const before = (await readdir(join(project, 'datasets'))).sort();
    const err = await job({ op: 'import', source: { type: 'idx', images, labels: join(demo, 'train-labels-idx1-ubyte.gz') }, name: 'bad' }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('train-labels-idx1-ubyte.gz');
    expect((await readdir(join(project, 'datasets'))).sort()).toEqual(before);
  });

  it('asymmetric noise along a class map (the noise form\'s map, paper §7.3): flips only mapped train rows, each to its target', async () => {
    const map = { '0': 6, '7': 9 };
    const noisy = await job({ op: 'noise', dataset: 'fmnist', type: 'asymmetric', ratio: 0.5, seed: 2, map });
    const clean = (await readNpy(join(project, 'datasets', 'fmnist', 'labels.npy'))).data as Int32Array;
    const split = (await readNpy(join(project, 'datasets', 'fmnist', 'split.npy'))).data as Uint8Array;
    const after = (await readNpy(join(project, 'datasets', noisy.id, 'labels.npy'))).data as Int32Array;
    let eligible = 0;
    const changed: number[] = [];
    clean.forEach((y, i) => {
      if (split[i] === 0 && (y === 0 || y === 7)) eligible++;
      if (after[i] !== y) changed.push(i);
    });
    expect(changed.length).toBe(Math.round(0.5 * eligible));
    for (const i of changed) {
      expect(split[i]).toBe(0);
      expect(after[i]).toBe(map[String(clean[i]) as '0' | '7']);
    }
    expect(noisy.derived).toMatchObject({ op: 'noise', noise: { type: 'asymmetric', flippedCount: changed.length, params: { map, classes: [0, 7] } } });
    // The contract refuses what cannot be drawn, before a job starts.
    const refused = (action: unknown) => DatasetJobSpec.safeParse({ kind: 'dataset', projectDir: project, action }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(refused({ op: 'noise', dataset: 'fmnist', type: 'asymmetric', ratio: 0.5, seed: 2, map: {} })).toEqual([
      'action.map: asymmetric noise needs a class map with at least one entry (source class: target class) or at least 2 classes',
    ]);
    expect(refused({ op: 'noise', dataset: 'fmnist', type: 'asymmetric', ratio: 0.5, seed: 2, map: { '3': 3 } })).toEqual(['action.map: the class map sends class 3 to itself; a flip must change the class']);
  });

  it('lists no backbones in a project without any', async () => {
    expect(await listBackbones(project)).toEqual([]);
  });
});
