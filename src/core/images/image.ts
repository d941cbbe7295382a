/**
 * The in-memory image NMLab works with: 8-bit, height × width × channels (HWC, C order),
 * grey (1 channel) or RGB (3). Alpha is dropped at decode time, as PIL's `convert('RGB')` does.
 */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/** A batch of equally sized images stored contiguously, N×H×W×C uint8 (a dataset's `images.npy`). */
export interface ImageBatch {
  count: number;
  height: number;
  width: number;
  channels: 1 | 3;
  pixels: Uint8Array;
}

/** Image `i` of a batch as a view (no copy). */
export function imageAt(batch: ImageBatch, i: number): RawImage {
  const size = batch.height * batch.width * batch.channels;
  return { width: batch.width, height: batch.height, channels: batch.channels, data: batch.pixels.subarray(i * size, (i + 1) * size) };
}

/**
 * ITU-R 601-2 luma, the weights PIL's `convert('L')` uses, so grey conversions match what a
 * Python user would get from the same files.
 */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** Convert an image to `channels` channels: grey→RGB replicates, RGB→grey uses LUMA (rounded like PIL). */
export function toChannels(img: RawImage, channels: 1 | 3): RawImage {
  if (img.channels === channels) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * channels);
  if (channels === 3) {
    for (let i = 0; i < n; i++) {
      const v = img.data[i];
      out[3 * i] = v;
      out[3 * i + 1] = v;
      out[3 * i + 2] = v;
    }
  } else {
    // PIL computes (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 in fixed point.
    for (let i = 0; i < n; i++) {
      out[i] = (img.data[3 * i] * 19595 + img.data[3 * i + 1] * 38470 + img.data[3 * i + 2] * 7471 + 0x8000) >> 16;
    }
  }
  return { width: img.width, height: img.height, channels, data: out };
}
