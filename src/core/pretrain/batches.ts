/**
 * Image batches for pre-training, shared by both step engines (train.ts's tfjs engine and
 * train-ort.ts). A module of its own so that the ORT engine, which train.ts loads lazily, does
 * not import train.ts back at run time.
 */
import type { ImageSet } from './train';

/**
 * uint8 pixels of `idx` → normalised float32 batch, NHWC (tfjs) or NCHW (ONNX), with the
 * images of `flipMask` mirrored horizontally.
 */
export function batchPixels(set: ImageSet, idx: ArrayLike<number>, mean: number[], std: number[], flipMask: Uint8Array | undefined, layout: 'nhwc' | 'nchw'): Float32Array {
  const [c, h, w] = set.size;
  const per = c * h * w;
  const out = new Float32Array(idx.length * per);
  const scale = std.map((s) => 1 / (255 * s));
  const shift = mean.map((m, i) => m / std[i]);
  for (let b = 0; b < idx.length; b++) {
    const src = idx[b] * per;
    const dst = b * per;
    const flip = flipMask !== undefined && flipMask[b] === 1;
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const sx = flip ? w - 1 - x : x;
          const to = layout === 'nhwc' ? dst + (y * w + x) * c + ch : dst + (ch * h + y) * w + x;
          out[to] = set.pixels[src + (y * w + sx) * c + ch] * scale[ch] - shift[ch];
        }
      }
    }
  }
  return out;
}
