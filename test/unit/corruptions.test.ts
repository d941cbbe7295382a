import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { blur, corruptBatch, edges, invert, lowContrast, rotate, CORRUPTIONS, NOISE_STD } from '../../src/core/images/corruptions';
import type { ImageBatch, RawImage } from '../../src/core/images/image';

// scipy.ndimage / numpy references from test/fixtures/corruptions/make_corruptions_fixture.py.
const e = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'corruptions', 'expected.json'), 'utf8'));
const img = (o: { shape: number[]; data: number[] }): RawImage => ({
  height: o.shape[0],
  width: o.shape[1],
  channels: (o.shape[2] ?? 1) as 1 | 3,
  data: Uint8Array.from(o.data),
});
const grey = img(e.grey);
const rgb = img(e.rgb);

/** numpy rounds halves to even, Math.round up: allow a difference of 1 at exact halves only. */
function expectClose(actual: Uint8Array, expected: number[]) {
  expect(actual.length).toBe(expected.length);
  let maxDiff = 0;
  let off = 0;
  actual.forEach((v, i) => {
    const d = Math.abs(v - expected[i]);
    maxDiff = Math.max(maxDiff, d);
    if (d) off++;
  });
  expect(maxDiff).toBeLessThanOrEqual(1);
  expect(off / actual.length).toBeLessThan(0.05);
}

describe('corruptions match scipy.ndimage', () => {
  it('inversion', () => expect(Array.from(invert(grey).data)).toEqual(e.invert));
  it('rotation (bilinear, zero fill, about the centre)', () => {
    expectClose(rotate(grey, 30).data, e.rotate30);
    expectClose(rotate(rgb, -45).data, e.rotateMinus45Rgb);
  });
  it('Gaussian blur (reflect border, radius round(4σ))', () => {
    expectClose(blur(rgb, 1.1).data, e['blur1.1Rgb']);
    expectClose(blur(grey, 0.7).data, e['blur0.7']);
  });
  it('Sobel edges, pure and mixed', () => {
    expectClose(edges(grey, 1).data, e.edge1);
    expectClose(edges(rgb, 0.6).data, e['edge0.6Rgb']);
  });
  it('low contrast', () => expectClose(lowContrast(grey, 0.3).data, e['contrast0.3']));
});

describe('corruptBatch', () => {
  const n = 40;
  const batch: ImageBatch = { count: n, height: 8, width: 8, channels: 1, pixels: new Uint8Array(n * 64).fill(128) };

  it('is deterministic per seed and differs across seeds', () => {
    for (const name of CORRUPTIONS) {
      const a = corruptBatch(batch, { name, severity: 3 }, 5);
      const b = corruptBatch(batch, { name, severity: 3 }, 5);
      expect(Buffer.from(a.pixels).equals(Buffer.from(b.pixels))).toBe(true);
      expect(a.pixels.length).toBe(batch.pixels.length);
    }
    const a = corruptBatch(batch, { name: 'gaussian-noise', severity: 3 }, 5);
    const c = corruptBatch(batch, { name: 'gaussian-noise', severity: 3 }, 6);
    expect(Buffer.from(a.pixels).equals(Buffer.from(c.pixels))).toBe(false);
  });

  it('adds noise with the ImageNet-C std', () => {
    const out = corruptBatch(batch, { name: 'gaussian-noise', severity: 2 }, 1);
    let s = 0;
    let s2 = 0;
    for (const v of out.pixels) {
      s += v - 128;
      s2 += (v - 128) ** 2;
    }
    const m = s / out.pixels.length;
    const sd = Math.sqrt(s2 / out.pixels.length - m * m);
    // 2560 draws: the sample std is within a few percent of 255·0.12 = 30.6 (no clipping at ±4σ).
    expect(Math.abs(m)).toBeLessThan(2.5);
    expect(sd / (255 * NOISE_STD[1])).toBeGreaterThan(0.93);
    expect(sd / (255 * NOISE_STD[1])).toBeLessThan(1.07);
  });

  it('rotates each image by ±angle', () => {
    // An image with a bright top row: rotation moves that row's mass, either sign.
    const p = new Uint8Array(n * 64);
    for (let i = 0; i < n; i++) p.fill(255, i * 64, i * 64 + 8);
    const out = corruptBatch({ ...batch, pixels: p }, { name: 'rotation', severity: 5 }, 3);
    const firstCol = (i: number) => Array.from({ length: 8 }, (_, y) => out.pixels[i * 64 + y * 8]);
    const lastCol = (i: number) => Array.from({ length: 8 }, (_, y) => out.pixels[i * 64 + y * 8 + 7]);
    let left = 0;
    let right = 0;
    for (let i = 0; i < n; i++) {
      // ±90°: the top row becomes the first or the last column.
      if (firstCol(i).every((v) => v > 200)) left++;
      if (lastCol(i).every((v) => v > 200)) right++;
    }
    expect(left + right).toBe(n);
    expect(left).toBeGreaterThan(5);
    expect(right).toBeGreaterThan(5);
  });
});
