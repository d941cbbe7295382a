/**
 * PNG and JPEG decoding in pure JavaScript (pngjs, jpeg-js), so image import needs no native
 * addon. The format is found from the file's magic bytes, not its extension.
 */
import { readFile } from 'node:fs/promises';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { NmlabError } from '../../shared/errors';
import type { RawImage } from './image';

/** Extensions an image-folder import picks up (case-insensitive). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

/** Refuse images above this many megapixels: a guard against decompression bombs. */
const MAX_MEGAPIXELS = 100;

function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
}

function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

/** Decode PNG or JPEG bytes. `file` names the source in error messages. */
export function decodeImage(bytes: Uint8Array, file: string): RawImage {
  try {
    if (isPng(bytes)) return decodePng(bytes);
    if (isJpeg(bytes)) return decodeJpeg(bytes);
  } catch (err) {
    if (err instanceof NmlabError) throw err;
    throw new NmlabError('BAD_FILE', `cannot decode image ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  throw new NmlabError('BAD_FILE', `${file} is not a PNG or JPEG image (unrecognised leading bytes)`);
}

/** Read and decode one image file. */
export async function readImageFile(file: string): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new NmlabError('NOT_FOUND', `cannot read image ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return decodeImage(bytes, file);
}

function decodePng(bytes: Uint8Array): RawImage {
  // pngjs always hands back 8-bit RGBA (16-bit is rescaled, palettes expanded).
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const n = png.width * png.height;
  if (n / 1e6 > MAX_MEGAPIXELS) throw new Error(`${png.width}×${png.height} exceeds ${MAX_MEGAPIXELS} megapixels`);
  // Colour types 0 and 4 are grey (with optional alpha); everything else is colour.
  const grey = png.colorType === 0 || png.colorType === 4;
  const channels = grey ? 1 : 3;
  const out = new Uint8Array(n * channels);
  const src = png.data;
  if (grey) for (let i = 0; i < n; i++) out[i] = src[4 * i];
  else
    for (let i = 0; i < n; i++) {
      out[3 * i] = src[4 * i];
      out[3 * i + 1] = src[4 * i + 1];
      out[3 * i + 2] = src[4 * i + 2];
    }
  return { width: png.width, height: png.height, channels, data: out };
}

function decodeJpeg(bytes: Uint8Array): RawImage {
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_MEGAPIXELS, maxMemoryUsageInMB: 1024 });
  const n = img.width * img.height;
  const rgb = img.data;
  // jpeg-js expands single-component (grey) JPEGs to RGB; fold them back when R = G = B everywhere.
  let grey = true;
  for (let i = 0; i < n && grey; i++) grey = rgb[3 * i] === rgb[3 * i + 1] && rgb[3 * i] === rgb[3 * i + 2];
  if (!grey) return { width: img.width, height: img.height, channels: 3, data: new Uint8Array(rgb.buffer, rgb.byteOffset, n * 3) };
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rgb[3 * i];
  return { width: img.width, height: img.height, channels: 1, data: out };
}

/** Encode an image as PNG (used to write previews and test folders). */
export function encodePng(img: RawImage): Uint8Array {
  const png = new PNG({ width: img.width, height: img.height, colorType: img.channels === 1 ? 0 : 2, inputColorType: img.channels === 1 ? 0 : 2, inputHasAlpha: false });
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return PNG.sync.write(png, { colorType: img.channels === 1 ? 0 : 2, inputColorType: img.channels === 1 ? 0 : 2, inputHasAlpha: false });
}
