import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parseIdx, readIdx, readIdxImages, readIdxLabels, readIdxPair, writeIdxUint8 } from '../../src/core/datasets/idx';
import { NmlabError } from '../../src/shared/errors';

// Fixtures written with Python's struct by test/fixtures/idx/make_idx_fixture.py.
const dir = join(__dirname, '..', 'fixtures', 'idx');
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
const FM = '/usr/share/datasets/fashion-mnist';

describe('IDX reader', () => {
  it('reads gzipped uint8 images', async () => {
    const im = await readIdxImages(join(dir, 'images-idx3-ubyte.gz'));
    expect([im.count, im.height, im.width]).toEqual(expected.images.shape);
    expect(im.channels).toBe(1);
    expect(Array.from(im.pixels)).toEqual(expected.images.data);
  });

  it('reads plain labels, 4-D RGB images, int32 labels and float32 arrays', async () => {
    expect(Array.from(await readIdxLabels(join(dir, 'labels-idx1-ubyte')))).toEqual(expected.labels);
    const rgb = await readIdxImages(join(dir, 'rgb-idx4-ubyte'));
    expect([rgb.count, rgb.height, rgb.width, rgb.channels]).toEqual(expected.rgb.shape);
    expect(Array.from(rgb.pixels)).toEqual(expected.rgb.data);
    expect(Array.from(await readIdxLabels(join(dir, 'labels-int32-idx1')))).toEqual(expected.labelsInt32);
    const f = await readIdx(join(dir, 'float32-idx2'));
    expect(f.dtype).toBe('float32');
    expect(f.shape).toEqual([2, 3]);
    Array.from(f.data).forEach((v, i) => expect(v).toBeCloseTo(expected.float32[i], 6));
  });

  it('rejects a count mismatch naming both files', async () => {
    const err = await readIdxPair(join(dir, 'images-idx3-ubyte.gz'), join(dir, 'labels4-idx1-ubyte')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NmlabError);
    expect((err as Error).message).toMatch(/images-idx3-ubyte\.gz has 5 images but labels4-idx1-ubyte has 4 labels/);
  });

  it('rejects truncated files, bad magic, labels given as images and missing files', async () => {
    await expect(readIdx(join(dir, 'truncated-idx3-ubyte'))).rejects.toThrow(/truncated-idx3-ubyte is not a valid IDX file: shape \[5, 3, 4\].*needs 76 bytes but the file has 73/);
    expect(() => parseIdx(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0]), 'x.png')).toThrow(/x\.png is not a valid IDX file: magic number/);
    expect(() => parseIdx(new Uint8Array([0x1f, 0x8b, 1, 2, 3]), 'bad.gz')).toThrow(/bad\.gz .*gzip data is corrupt/);
    await expect(readIdxImages(join(dir, 'labels-idx1-ubyte'))).rejects.toThrow(/is this a labels file/);
    await expect(readIdxLabels(join(dir, 'images-idx3-ubyte.gz'))).rejects.toThrow(/is this an images file/);
    await expect(readIdx(join(dir, 'nope'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('round-trips through writeIdxUint8 (gzipped and plain)', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'nmlab-idx-'));
    try {
      const data = Uint8Array.from(expected.images.data as number[]);
      for (const name of ['a-idx3-ubyte.gz', 'a-idx3-ubyte']) {
        await writeIdxUint8(join(tmp, name), expected.images.shape, data);
        const back = await readIdxImages(join(tmp, name));
        expect(Array.from(back.pixels)).toEqual(expected.images.data);
      }
      expect(readFileSync(join(tmp, 'a-idx3-ubyte.gz'))[0]).toBe(0x1f);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it.skipIf(!existsSync(FM) || !expected.fashionTest)('reads Debian Fashion-MNIST test set like numpy does', async () => {
    const { images, labels } = await readIdxPair(join(FM, 't10k-images-idx3-ubyte.gz'), join(FM, 't10k-labels-idx1-ubyte.gz'));
    const e = expected.fashionTest;
    expect([images.count, images.height, images.width]).toEqual(e.shape);
    let sum = 0;
    for (let i = 0; i < images.pixels.length; i++) sum += images.pixels[i];
    expect(sum).toBe(e.pixelSum);
    expect(Array.from(images.pixels.subarray(0, 50))).toEqual(e.first);
    expect(Array.from(labels.subarray(0, 20))).toEqual(e.firstLabels);
    const counts = new Array(10).fill(0);
    for (const l of labels) counts[l]++;
    expect(counts).toEqual(e.labelCounts);
  });
});
