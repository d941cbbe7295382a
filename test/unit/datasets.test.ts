import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePng } from '../../src/core/images/decode';
import type { RawImage } from '../../src/core/images/image';
import { importFeatures, importIdx, importImageFolder } from '../../src/core/datasets/importers';
import { deriveCorruptions, deriveFraction } from '../../src/core/datasets/derive';
import { deriveNoisy } from '../../src/core/datasets/noise';
import { readNpy } from '../../src/core/arrays/npy';
import { listDatasets, loadDataset, readDatasetManifest, splitRows } from '../../src/core/datasets/store';
import { stratifiedSplit } from '../../src/core/datasets/split';
import { writeIdxUint8 } from '../../src/core/datasets/idx';
import { writeNpy } from '../../src/core/arrays/npy';
import { NmlabError } from '../../src/shared/errors';
import { demoDataDir, importDemoDataset, readDemoManifest } from '../../src/core/datasets/demo';
import { readIdxPair } from '../../src/core/datasets/idx';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

let tmp: string;
let project: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-ds-'));
  project = join(tmp, 'proj');
  await mkdir(join(project, 'datasets'), { recursive: true });
});
afterEach(() => rm(tmp, { recursive: true, force: true }));

/** A w×h image whose pixels encode (seed, position), so rows can be traced after import. */
function synth(seed: number, h = 4, w = 5, channels: 1 | 3 = 1): RawImage {
  const data = new Uint8Array(h * w * channels);
  for (let i = 0; i < data.length; i++) data[i] = (seed * 37 + i * 11) % 256;
  return { height: h, width: w, channels, data };
}

async function writeFolder(root: string, spec: Record<string, RawImage[]>): Promise<void> {
  for (const [rel, imgs] of Object.entries(spec)) {
    await mkdir(join(root, rel), { recursive: true });
    for (let i = 0; i < imgs.length; i++) await writeFile(join(root, rel, `img${i}.png`), encodePng(imgs[i]));
  }
}

const datasetFolders = async () => (await readdir(join(project, 'datasets'))).sort();

describe('image-folder import', () => {
  it('imports class/ layout with sorted classes and exact pixels', async () => {
    const src = join(tmp, 'imgs');
    await writeFolder(src, { cat: [synth(1), synth(2)], ant: [synth(3)], bee: [synth(4), synth(5), synth(6)] });
    await writeFile(join(src, 'bee', 'notes.txt'), 'not an image');
    const m = await importImageFolder(project, { dir: src, name: 'Bugs & Cats' });
    expect(m.id).toBe('bugs-cats');
    expect(m.classes).toEqual(['ant', 'bee', 'cat']);
    expect(m.classCounts).toEqual([1, 3, 2]);
    expect(m.image).toEqual({ height: 4, width: 5, channels: 1 });
    expect(m.provenance.notes.join(' ')).toMatch(/1 non-image file/);
    const ds = await loadDataset(project, m.id);
    expect(Array.from(ds.labels)).toEqual([0, 1, 1, 1, 2, 2]);
    // Row 0 is ant/img0.png = synth(3).
    expect(Array.from(ds.images!.pixels.subarray(0, 20))).toEqual(Array.from(synth(3).data));
    expect(Array.from(ds.images!.pixels.subarray(5 * 20, 6 * 20))).toEqual(Array.from(synth(2).data));
  });

  it('imports domain/class layout, promoting grey to RGB when any image is in colour', async () => {
    const src = join(tmp, 'multi');
    await writeFolder(src, { photo: [], 'photo/a': [synth(1, 4, 5, 3)], 'photo/b': [synth(2, 4, 5, 3)], 'sketch/a': [synth(3)], 'sketch/b': [synth(4)] });
    const m = await importImageFolder(project, { dir: src, name: 'multi' });
    expect(m.domains).toEqual(['photo', 'sketch']);
    expect(m.source).toMatchObject({ layout: 'domain/class' });
    expect(m.image!.channels).toBe(3);
    const ds = await loadDataset(project, 'multi');
    expect(Array.from(ds.domains)).toEqual([0, 0, 1, 1]);
    expect(Array.from(ds.labels)).toEqual([0, 1, 0, 1]);
    // Grey replicated into three equal channels.
    const row2 = ds.images!.pixels.subarray(2 * 60, 3 * 60);
    expect(row2[0]).toBe(synth(3).data[0]);
    expect(row2[1]).toBe(synth(3).data[0]);
  });

  it('resizes mixed sizes by default and names the file when asked not to', async () => {
    const src = join(tmp, 'mixed');
    await writeFolder(src, { a: [synth(1), synth(2)], b: [synth(3, 8, 10)] });
    const m = await importImageFolder(project, { dir: src, name: 'mixed' });
    expect(m.image).toMatchObject({ height: 4, width: 5 });
    expect(m.provenance.notes[0]).toMatch(/1 image\(s\) resized to 5×4/);
    await expect(importImageFolder(project, { dir: src, name: 'mixed2', onSizeMismatch: 'error' })).rejects.toThrow(/b\/img0\.png is 10×8 but the dataset's images are 5×4/);
  });

  it('leaves the project untouched when an image is unreadable or a class is empty', async () => {
    const src = join(tmp, 'broken');
    await writeFolder(src, { a: [synth(1)], b: [synth(2)] });
    await writeFile(join(src, 'b', 'bad.png'), 'garbage');
    const before = await datasetFolders();
    const err = await importImageFolder(project, { dir: src, name: 'broken' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NmlabError);
    expect((err as Error).message).toMatch(/b\/bad\.png is not a PNG or JPEG/);
    expect(await datasetFolders()).toEqual(before);
    await rm(join(src, 'b'), { recursive: true });
    await mkdir(join(src, 'b'));
    await expect(importImageFolder(project, { dir: src, name: 'broken' })).rejects.toThrow(/class folder .*broken\/b has no PNG or JPEG images/);
    expect(await datasetFolders()).toEqual(before);
  });

  it('refuses to overwrite an existing dataset id and keeps the original', async () => {
    const src = join(tmp, 'x');
    await writeFolder(src, { a: [synth(1)], b: [synth(2)] });
    const m = await importImageFolder(project, { dir: src, name: 'x' });
    await expect(importImageFolder(project, { dir: src, name: 'y', id: m.id })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    expect((await readDatasetManifest(project, m.id)).name).toBe('x');
    expect((await importImageFolder(project, { dir: src, name: 'x' })).id).toBe('x-2');
    expect((await listDatasets(project)).map((d) => d.id)).toEqual(['x', 'x-2']);
  });
});

describe('IDX and feature import', () => {
  it('imports a train and a test IDX pair as the given split', async () => {
    const imgs = new Uint8Array(6 * 2 * 3).map((_, i) => i);
    await writeIdxUint8(join(tmp, 'tr-img.gz'), [6, 2, 3], imgs);
    await writeIdxUint8(join(tmp, 'tr-lab'), [6], Uint8Array.of(0, 1, 2, 0, 1, 2));
    await writeIdxUint8(join(tmp, 'te-img'), [2, 2, 3], imgs.subarray(0, 12));
    await writeIdxUint8(join(tmp, 'te-lab'), [2], Uint8Array.of(2, 1));
    const m = await importIdx(project, { name: 'idx', images: join(tmp, 'tr-img.gz'), labels: join(tmp, 'tr-lab'), testImages: join(tmp, 'te-img'), testLabels: join(tmp, 'te-lab'), classes: ['x', 'y', 'z'] });
    expect(m.split).toMatchObject({ train: 6, test: 2, method: 'given' });
    expect(m.classCounts).toEqual([2, 3, 3]);
    const ds = await loadDataset(project, 'idx');
    expect(Array.from(splitRows(ds, 'test'))).toEqual([6, 7]);
    expect(Array.from(ds.images!.pixels.subarray(6 * 6, 7 * 6))).toEqual([0, 1, 2, 3, 4, 5]);
    await writeIdxUint8(join(tmp, 'te-lab3'), [3], Uint8Array.of(2, 1, 0));
    await expect(importIdx(project, { name: 'bad', images: join(tmp, 'te-img'), labels: join(tmp, 'te-lab3') })).rejects.toThrow(/te-img has 2 images but te-lab3 has 3 labels/);
    // Labels up to 2 in 2 rows: 3 classes cannot all have samples (K is bounded by the rows).
    await writeIdxUint8(join(tmp, 'gap'), [2], Uint8Array.of(0, 2));
    await expect(importIdx(project, { name: 'gap', images: join(tmp, 'te-img'), labels: join(tmp, 'gap') })).rejects.toThrow(/gap: label 1 is 2, which implies 3 classes but the file has only 2 rows/);
  });

  it('imports .npy features with labels and a stratified split; rejects count mismatches', async () => {
    const m = 40;
    const feats = Float32Array.from({ length: m * 3 }, (_, i) => Math.sin(i));
    const labels = BigInt64Array.from({ length: m }, (_, i) => BigInt(i % 4));
    await writeNpy(join(tmp, 'f.npy'), { dtype: 'float32', shape: [m, 3], data: feats });
    await writeNpy(join(tmp, 'y.npy'), { dtype: 'int64', shape: [m], data: labels });
    const man = await importFeatures(project, { name: 'emb', features: join(tmp, 'f.npy'), labels: join(tmp, 'y.npy'), testFraction: 0.25, seed: 3 });
    expect(man).toMatchObject({ kind: 'features', featureDim: 3, count: 40, split: { train: 28, test: 12 } });
    const ds = await loadDataset(project, 'emb');
    expect(Array.from(ds.features!.subarray(0, 6))).toEqual(Array.from(feats.subarray(0, 6)));
    await writeNpy(join(tmp, 'y39.npy'), { dtype: 'int64', shape: [39], data: labels.subarray(0, 39) });
    await expect(importFeatures(project, { name: 'x', features: join(tmp, 'f.npy'), labels: join(tmp, 'y39.npy') })).rejects.toThrow(/f\.npy has 40 samples but .*y39\.npy has 39 labels/);
  });

  it('imports CSV features with a label column', async () => {
    await writeFile(join(tmp, 'f.csv'), 'a,b,label\n1,2,0\n3,4,1\n5,6,1\n');
    const m = await importFeatures(project, { name: 'csv', features: join(tmp, 'f.csv'), labelColumn: 'label' });
    expect(m.classCounts).toEqual([1, 2]);
    const ds = await loadDataset(project, 'csv');
    expect(Array.from(ds.features!)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('splits and derived datasets', () => {
  it('stratified split takes round(f·n_c) of each class, reproducibly', () => {
    const labels = Int32Array.from({ length: 103 }, (_, i) => (i < 50 ? 0 : i < 83 ? 1 : 2)); // 50, 33, 20
    const s = stratifiedSplit(labels, 0.3, 9);
    const perClass = [0, 0, 0];
    s.forEach((v, i) => (perClass[labels[i]] += v));
    expect(perClass).toEqual([15, 10, 6]);
    expect(Array.from(stratifiedSplit(labels, 0.3, 9))).toEqual(Array.from(s));
    expect(Array.from(stratifiedSplit(labels, 0.3, 10))).not.toEqual(Array.from(s));
  });

  async function imageSet() {
    const src = join(tmp, 'set');
    const spec: Record<string, RawImage[]> = {};
    for (let c = 0; c < 3; c++) spec[`c${c}`] = Array.from({ length: 10 }, (_, i) => synth(c * 10 + i, 6, 6));
    await writeFolder(src, spec);
    return importImageFolder(project, { dir: src, name: 'set', testFraction: 0.2, seed: 1 });
  }

  it('derives a stratified fraction that shares the parent pixels', async () => {
    await imageSet();
    const parent = await loadDataset(project, 'set');
    const m = await deriveFraction(project, 'set', { fraction: 0.5, seed: 4 });
    expect(m.derived).toMatchObject({ op: 'fraction', parent: 'set', fraction: 0.5 });
    expect(m.arrays.images).toBeUndefined();
    expect(m.classCounts).toEqual([4, 4, 4]); // half of 8 train rows per class
    const ds = await loadDataset(project, m.id);
    const idx = (await import('../../src/core/arrays/npy')).readNpy;
    const rows = (await idx(join(project, 'datasets', m.id, 'indices.npy'))).data as Int32Array;
    for (let i = 0; i < rows.length; i++) {
      expect(parent.split![rows[i]]).toBe(0);
      expect(ds.labels[i]).toBe(parent.labels[rows[i]]);
      expect(Array.from(ds.images!.pixels.subarray(i * 36, (i + 1) * 36))).toEqual(Array.from(parent.images!.pixels.subarray(rows[i] * 36, (rows[i] + 1) * 36)));
    }
    expect(ds.split!.every((v) => v === 0)).toBe(true);
  });

  it('derives corruption domains over the test rows', async () => {
    await imageSet();
    const parent = await loadDataset(project, 'set');
    const m = await deriveCorruptions(project, 'set', { corruptions: [{ name: 'inversion', severity: 3 }, { name: 'blur', severity: 2 }], seed: 0 });
    expect(m.domains).toEqual(['clean', 'inversion', 'blur']);
    expect(m.count).toBe(18);
    const ds = await loadDataset(project, m.id);
    const test = splitRows(parent, 'test');
    expect(ds.split).toBeUndefined();
    for (let i = 0; i < 6; i++) {
      const clean = parent.images!.pixels.subarray(test[i] * 36, (test[i] + 1) * 36);
      expect(Array.from(ds.images!.pixels.subarray(i * 36, (i + 1) * 36))).toEqual(Array.from(clean));
      expect(Array.from(ds.images!.pixels.subarray((6 + i) * 36, (7 + i) * 36))).toEqual(Array.from(clean, (v) => 255 - v));
      expect(ds.domains[12 + i]).toBe(2);
      expect(ds.labels[12 + i]).toBe(parent.labels[test[i]]);
    }
  });

  it('derives label noise on train rows only, recording flips and the realised transition matrix', async () => {
    await imageSet();
    const before = await loadDataset(project, 'set');
    const m = await deriveNoisy(project, 'set', { type: 'symmetric', ratio: 0.25, seed: 7 });
    expect(m.arrays.images).toBeUndefined();
    const noisy = await loadDataset(project, m.id);
    const parent = await loadDataset(project, 'set');
    // The parent is untouched.
    expect(Array.from(parent.labels)).toEqual(Array.from(before.labels));
    const train = splitRows(parent, 'train');
    const flipped = (await readNpy(join(project, 'datasets', m.id, 'flipped.npy'))).data as Int32Array;
    expect(flipped.length).toBe(Math.round(0.25 * train.length));
    const changed = Array.from(parent.labels.keys()).filter((i) => parent.labels[i] !== noisy.labels[i]);
    expect(changed).toEqual(Array.from(flipped));
    for (const i of changed) expect(parent.split![i]).toBe(0);
    // Transition matrix recomputed here from the two label vectors over the train rows.
    const counts = [0, 1, 2].map(() => [0, 0, 0]);
    for (const r of train) counts[parent.labels[r]][noisy.labels[r]]++;
    const T = counts.map((row) => row.map((v) => v / row.reduce((a, b) => a + b, 0)));
    const rec = m.derived!.op === 'noise' ? m.derived!.noise : undefined;
    expect(rec?.flippedCount).toBe(flipped.length);
    rec!.transitionMatrix.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(T[i][j], 12)));
    expect(Array.from(noisy.images!.pixels)).toEqual(Array.from(parent.images!.pixels));
    expect(Array.from(noisy.split!)).toEqual(Array.from(parent.split!));
  });
});

describe('shipped demo data', () => {
  it('matches its recorded checksums and is class-balanced', async () => {
    const m = await readDemoManifest();
    expect(m.classes).toHaveLength(10);
    for (const [file, sha] of Object.entries(m.sha256)) {
      expect(createHash('sha256').update(await readFile(join(demoDataDir(), file))).digest('hex')).toBe(sha);
    }
    const { labels } = await readIdxPair(join(demoDataDir(), m.train.images), join(demoDataDir(), m.train.labels));
    const counts = new Array(10).fill(0);
    for (const y of labels) counts[y]++;
    expect(counts).toEqual(new Array(10).fill(m.train.perClass));
  });

  it('imports a smaller balanced part with the given split', async () => {
    const m = await importDemoDataset(project, { trainPerClass: 5, testPerClass: 2 });
    expect(m).toMatchObject({ count: 70, split: { train: 50, test: 20, method: 'given' }, image: { height: 28, width: 28, channels: 1 } });
    expect(m.classCounts).toEqual(new Array(10).fill(7));
  });

  it.skipIf(!existsSync('/usr/share/datasets/fashion-mnist'))('holds the first images of each class of Debian Fashion-MNIST', async () => {
    const src = await readIdxPair('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz', '/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz');
    const m = await readDemoManifest();
    const demo = await readIdxPair(join(demoDataDir(), m.test.images), join(demoDataDir(), m.test.labels));
    // The first test image of class 3 in the Debian file must be the demo's first of class 3.
    const firstSrc = Array.from(src.labels).indexOf(3);
    const firstDemo = Array.from(demo.labels).indexOf(3);
    expect(Buffer.from(demo.images.pixels.subarray(firstDemo * 784, (firstDemo + 1) * 784)).equals(Buffer.from(src.images.pixels.subarray(firstSrc * 784, (firstSrc + 1) * 784)))).toBe(true);
  });
});
