/**
 * Corruption domains for the out-of-domain protocol (paper §5: train on the source domain,
 * evaluate on target domains). Each corruption maps a clean image to a shifted one, with a
 * severity 1–5 in the manner of ImageNet-C (Hendrycks & Dietterich, 2019), and is
 * deterministic given its seed: the same dataset, corruption and seed give the same pixels.
 *
 * All arithmetic is in float on [0, 255] and rounded once at the end.
 */
import { NmlabError } from '../../shared/errors';
import type { CorruptionName, CorruptionSpec } from '../../shared/contract/datasets';
import { Rng } from '../tuning/rng';
import { imageAt, type ImageBatch, type RawImage } from './image';

export const CORRUPTIONS: readonly CorruptionName[] = ['rotation', 'inversion', 'edge', 'gaussian-noise', 'blur', 'low-contrast'];

/** Rotation angle in degrees per severity; each image turns by ±angle (sign drawn from the seed). */
export const ROTATION_DEGREES = [15, 30, 45, 60, 90];
/** Noise std in [0,1] units per severity: ImageNet-C's gaussian_noise values. */
export const NOISE_STD = [0.08, 0.12, 0.18, 0.26, 0.38];
/** Blur sigma in pixels of a 32-pixel image per severity (scaled with the image's shorter side). */
export const BLUR_SIGMA = [0.6, 0.9, 1.2, 1.6, 2.2];
/** Contrast factor per severity: ImageNet-C's contrast values. */
export const CONTRAST = [0.4, 0.3, 0.2, 0.1, 0.05];
/** Weight of the Sobel edge map against the image per severity (5 = pure edges). */
export const EDGE_MIX = [0.2, 0.4, 0.6, 0.8, 1];

function toUint8(v: Float32Array): Uint8Array {
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] <= 0 ? 0 : v[i] >= 255 ? 255 : Math.round(v[i]);
  return out;
}

function same(img: RawImage, data: Uint8Array): RawImage {
  return { width: img.width, height: img.height, channels: img.channels, data };
}

/** 255 − x. */
export function invert(img: RawImage): RawImage {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = 255 - img.data[i];
  return same(img, out);
}

/**
 * Rotate by `degrees` about the image centre ((H−1)/2, (W−1)/2), bilinear, pixels from outside
 * the frame count as 0: scipy.ndimage.rotate(img, degrees, reshape=False, order=1,
 * mode='grid-constant'). Positive angles turn counter-clockwise as displayed.
 */
export function rotate(img: RawImage, degrees: number): RawImage {
  const { height: h, width: w, channels: c, data } = img;
  const t = (degrees * Math.PI) / 180;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const out = new Float32Array(data.length);
  const at = (y: number, x: number, k: number) => (y < 0 || y >= h || x < 0 || x >= w ? 0 : data[(y * w + x) * c + k]);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Inverse map: the source point that lands on (y, x).
      const dy = y - cy;
      const dx = x - cx;
      const sy = cos * dy + sin * dx + cy;
      const sx = -sin * dy + cos * dx + cx;
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const fy = sy - y0;
      const fx = sx - x0;
      for (let k = 0; k < c; k++) {
        const v =
          (1 - fy) * ((1 - fx) * at(y0, x0, k) + fx * at(y0, x0 + 1, k)) + fy * ((1 - fx) * at(y0 + 1, x0, k) + fx * at(y0 + 1, x0 + 1, k));
        out[(y * w + x) * c + k] = v;
      }
    }
  }
  return same(img, toUint8(out));
}

/** scipy.ndimage's default 'reflect' border: (d c b a | a b c d | d c b a). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - 1 - j;
  return j;
}

/** Separable 1-D correlation along rows or columns of one channel plane (float), reflect border. */
function correlate1d(src: Float32Array, h: number, w: number, kernel: Float32Array, axis: 0 | 1): Float32Array {
  const r = (kernel.length - 1) / 2;
  const out = new Float32Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) {
        const v = axis === 0 ? src[reflect(y + k, h) * w + x] : src[y * w + reflect(x + k, w)];
        s += kernel[k + r] * v;
      }
      out[y * w + x] = s;
    }
  }
  return out;
}

function planes(img: RawImage): Float32Array[] {
  const n = img.width * img.height;
  return Array.from({ length: img.channels }, (_, k) => {
    const p = new Float32Array(n);
    for (let i = 0; i < n; i++) p[i] = img.data[i * img.channels + k];
    return p;
  });
}

function interleave(ps: Float32Array[], img: RawImage): Float32Array {
  const c = ps.length;
  const out = new Float32Array(img.data.length);
  ps.forEach((p, k) => p.forEach((v, i) => (out[i * c + k] = v)));
  return out;
}

/** Gaussian kernel as scipy.ndimage.gaussian_filter builds it (radius = round(4σ)). */
export function gaussianKernel(sigma: number): Float32Array {
  const r = Math.floor(4 * sigma + 0.5);
  const k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/** Gaussian blur per channel: scipy.ndimage.gaussian_filter(plane, sigma) (mode 'reflect'). */
export function blur(img: RawImage, sigma: number): RawImage {
  const k = gaussianKernel(sigma);
  const ps = planes(img).map((p) => correlate1d(correlate1d(p, img.height, img.width, k, 0), img.height, img.width, k, 1));
  return same(img, toUint8(interleave(ps, img)));
}

/**
 * Sobel edge magnitude, hypot(sobel_y, sobel_x) on the grey level (mean of channels), scaled so
 * the strongest edge is 255, then mixed with the image: (1−α)·x + α·edges.
 */
export function edges(img: RawImage, alpha = 1): RawImage {
  const { height: h, width: w, channels: c } = img;
  const n = h * w;
  const grey = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += img.data[i * c + k];
    grey[i] = s / c;
  }
  const d = Float32Array.of(-1, 0, 1);
  const sm = Float32Array.of(1, 2, 1);
  const gy = correlate1d(correlate1d(grey, h, w, d, 0), h, w, sm, 1);
  const gx = correlate1d(correlate1d(grey, h, w, sm, 0), h, w, d, 1);
  const mag = new Float32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    mag[i] = Math.hypot(gx[i], gy[i]);
    if (mag[i] > max) max = mag[i];
  }
  const scale = max > 0 ? 255 / max : 0;
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) out[i * c + k] = (1 - alpha) * img.data[i * c + k] + alpha * mag[i] * scale;
  return same(img, toUint8(out));
}

/** ImageNet-C contrast: (x − mean)·factor + mean, the mean over the whole image. */
export function lowContrast(img: RawImage, factor: number): RawImage {
  let mean = 0;
  for (const v of img.data) mean += v;
  mean /= img.data.length;
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (img.data[i] - mean) * factor + mean;
  return same(img, toUint8(out));
}

/** Additive Gaussian noise, std in [0,1] units (ImageNet-C), clipped to the pixel range. */
export function gaussianNoise(img: RawImage, std: number, rng: Rng): RawImage {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i] + 255 * std * rng.normal();
  return same(img, toUint8(out));
}

/** Apply one corruption at its severity; `rng` supplies the randomness (rotation sign, noise). */
export function corruptImage(img: RawImage, spec: CorruptionSpec, rng: Rng): RawImage {
  const s = spec.severity - 1;
  if (!(s >= 0 && s < 5)) throw new NmlabError('BAD_REQUEST', `corruption severity must be 1..5, got ${spec.severity}`);
  switch (spec.name) {
    case 'rotation':
      return rotate(img, (rng.next() < 0.5 ? -1 : 1) * ROTATION_DEGREES[s]);
    case 'inversion':
      return invert(img);
    case 'edge':
      return edges(img, EDGE_MIX[s]);
    case 'gaussian-noise':
      return gaussianNoise(img, NOISE_STD[s], rng);
    case 'blur':
      return blur(img, (BLUR_SIGMA[s] * Math.min(img.height, img.width)) / 32);
    case 'low-contrast':
      return lowContrast(img, CONTRAST[s]);
  }
}

/**
 * Corrupt every image of a batch. The generator is seeded from (seed, corruption name) so
 * adding or reordering corruptions does not change the pixels of the others.
 */
export function corruptBatch(batch: ImageBatch, spec: CorruptionSpec, seed: number): ImageBatch {
  const rng = new Rng(mixSeed(seed, spec.name));
  const per = batch.height * batch.width * batch.channels;
  const pixels = new Uint8Array(batch.pixels.length);
  for (let i = 0; i < batch.count; i++) pixels.set(corruptImage(imageAt(batch, i), spec, rng).data, i * per);
  return { ...batch, pixels };
}

function mixSeed(seed: number, name: string): number {
  let h = seed >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
