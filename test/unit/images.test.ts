import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, encodePng, readImageFile } from '../../src/core/images/decode';
import { toChannels, type RawImage } from '../../src/core/images/image';
import { batchDims, cropGeometry, preprocessBatch, resizeImage, resolvePreprocess } from '../../src/core/images/preprocess';
import type { ResolvedPreprocess } from '../../src/shared/contract/backbones';
import { NmlabError } from '../../src/shared/errors';

// PIL decodes and torch preprocessing from test/fixtures/images/make_images_fixture.py.
const dir = join(__dirname, '..', 'fixtures', 'images');
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));

function img(shape: number[], data: number[]): RawImage {
  return { height: shape[0], width: shape[1], channels: (shape[2] ?? 1) as 1 | 3, data: Uint8Array.from(data) };
}

describe('image decoding matches PIL', () => {
  for (const name of ['grey.png', 'rgb.png', 'rgba.png', 'palette.png']) {
    it(`decodes ${name} exactly`, async () => {
      const e = expected.decode[name];
      const im = await readImageFile(join(dir, name));
      expect([im.height, im.width, im.channels]).toEqual([e.shape[0], e.shape[1], e.shape[2] ?? 1]);
      expect(Array.from(im.data)).toEqual(e.data);
    });
  }
  for (const name of ['smooth.jpg', 'smooth-grey.jpg']) {
    it(`decodes ${name} within JPEG decoder tolerance`, async () => {
      const e = expected.decode[name];
      const im = await readImageFile(join(dir, name));
      expect([im.height, im.width, im.channels]).toEqual([e.shape[0], e.shape[1], e.shape[2] ?? 1]);
      // Two IDCT implementations (libjpeg vs jpeg-js) differ by rounding only.
      let maxDiff = 0;
      im.data.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - e.data[i]))));
      expect(maxDiff).toBeLessThanOrEqual(3);
    });
  }
  it('names the file when it is not an image or is truncated', async () => {
    await expect(readImageFile(join(dir, 'not-an-image.png'))).rejects.toThrow(/not-an-image\.png is not a PNG or JPEG/);
    const err = await readImageFile(join(dir, 'truncated.png')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NmlabError);
    expect((err as NmlabError).code).toBe('BAD_FILE');
    expect((err as Error).message).toMatch(/cannot decode image .*truncated\.png/);
    await expect(readImageFile(join(dir, 'missing.png'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
  it('round-trips PNG encoding for grey and RGB', () => {
    for (const name of ['grey.png', 'rgb.png']) {
      const e = expected.decode[name];
      const im = img(e.shape, e.data);
      expect(Array.from(decodeImage(encodePng(im), 'x').data)).toEqual(e.data);
    }
  });
  it('converts RGB to grey like PIL convert("L")', () => {
    const rgb = img([7, 5, 3], expected.luma.rgb);
    expect(Array.from(toChannels(rgb, 1).data)).toEqual(expected.luma.grey);
  });
});

describe('preprocessing matches torch (resize, centre crop, normalise, layout)', () => {
  for (const c of expected.preprocess) {
    it(c.name, () => {
      const out = preprocessBatch([img(c.image.shape, c.image.data)], c.spec as ResolvedPreprocess);
      expect(out.length).toBe(c.expected.length);
      let maxDiff = 0;
      out.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - c.expected[i]))));
      expect(maxDiff).toBeLessThan(1e-5);
    });
  }
  it('uses torchvision crop geometry (shorter side, truncation, round-half-even offsets)', () => {
    // 7×5 source, size 4, cropPct 0.875: shorter side 5 -> floor(4/0.875)=4, other int(4*7/5)=5.
    expect(cropGeometry(7, 5, 4, 4, 0.875)).toEqual({ resizedH: 5, resizedW: 4, top: 0, left: 0 });
    expect(cropGeometry(28, 28, 24, 24, 0.75)).toEqual({ resizedH: 32, resizedW: 32, top: 4, left: 4 });
  });
  it('stretch-resizes to uint8 for mixed-size import', () => {
    const e = expected.decode['grey.png'];
    const r = resizeImage(img(e.shape, e.data), 3, 4);
    expect([r.height, r.width, r.channels]).toEqual([3, 4, 1]);
    // 6×8 -> 3×4 is an exact 2× bilinear downscale: each output is the mean of a 2×2 block.
    const d = e.data as number[];
    expect(r.data[0]).toBe(Math.round((d[0] + d[1] + d[8] + d[9]) / 4));
  });
});

describe('resolvePreprocess (timm order: overrides, backbone.json, model shape, defaults)', () => {
  const input = { name: 'x', type: 'float32', shape: ['n', 3, 32, 32] };
  it('fills from the model input and defaults', () => {
    const r = resolvePreprocess(undefined, {}, input);
    expect(r).toEqual({ inputSize: [3, 32, 32], mean: [0, 0, 0], std: [1, 1, 1], interpolation: 'bilinear', cropPct: 1, layout: 'nchw', scale: 1 / 255 });
    expect(batchDims(r, 5)).toEqual([5, 3, 32, 32]);
  });
  it('overrides beat the backbone spec, which beats defaults', () => {
    const r = resolvePreprocess({ mean: [0.5], std: [0.5], cropPct: 0.9 }, { mean: [0.1, 0.2, 0.3] }, input);
    expect(r.mean).toEqual([0.1, 0.2, 0.3]);
    expect(r.std).toEqual([0.5, 0.5, 0.5]);
    expect(r.cropPct).toBe(0.9);
  });
  it('infers NHWC and reports conflicts and missing sizes', () => {
    expect(resolvePreprocess(undefined, {}, { name: 'x', type: 'float32', shape: [null, 28, 28, 1] }).layout).toBe('nhwc');
    expect(() => resolvePreprocess(undefined, { inputSize: [3, 64, 64] }, input, 'm.onnx')).toThrow(/m\.onnx takes input 3×32×32/);
    expect(() => resolvePreprocess(undefined, {}, { name: 'x', type: 'float32', shape: ['n', 3, 'h', 'w'] }, 'm.onnx')).toThrow(/--size/);
    expect(() => resolvePreprocess(undefined, { mean: [1, 2] }, input)).toThrow(/mean has 2 values/);
  });
});
