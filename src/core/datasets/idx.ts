/**
 * MNIST's IDX format (yann.lecun.com/exdb/mnist): a big-endian header `0 0 <type> <ndim>`,
 * then `ndim` uint32 dimensions, then the data in C order. Fashion-MNIST ships the same
 * format gzipped. We read either, from the magic bytes rather than the file name.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { basename } from 'node:path';
import { NmlabError } from '../../shared/errors';

/** IDX element types (the third magic byte) and their sizes. Only uint8 is written by MNIST-style sets. */
const IDX_TYPES = {
  0x08: { name: 'uint8', size: 1 },
  0x09: { name: 'int8', size: 1 },
  0x0b: { name: 'int16', size: 2 },
  0x0c: { name: 'int32', size: 4 },
  0x0d: { name: 'float32', size: 4 },
  0x0e: { name: 'float64', size: 8 },
} as const;
type IdxTypeCode = keyof typeof IDX_TYPES;
export type IdxDtype = (typeof IDX_TYPES)[IdxTypeCode]['name'];

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

function bad(file: string, why: string): NmlabError {
  return new NmlabError('BAD_FILE', `${file} is not a valid IDX file: ${why}`);
}

/** Decode IDX bytes (gzipped or not). `file` only names the source in error messages. */
export function parseIdx(raw: Uint8Array, file = 'input'): IdxArray {
  let bytes = raw;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw bad(file, `gzip data is corrupt (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  if (bytes.length < 4) throw bad(file, `only ${bytes.length} bytes, too short for the 4-byte magic number`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw bad(file, `magic number starts ${bytes[0]} ${bytes[1]}, expected 0 0 (is it an IDX ubyte file?)`);
  }
  const code = bytes[2];
  if (!(code in IDX_TYPES)) throw bad(file, `unknown element type 0x${code.toString(16)}`);
  const type = IDX_TYPES[code as IdxTypeCode];
  const ndim = bytes[3];
  if (ndim < 1) throw bad(file, 'it declares 0 dimensions');
  const headerLen = 4 + 4 * ndim;
  if (bytes.length < headerLen) throw bad(file, `truncated header (${ndim} dimensions need ${headerLen} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = headerLen + count * type.size;
  if (bytes.length !== expected) {
    throw bad(file, `shape [${shape.join(', ')}] of ${type.name} needs ${expected} bytes but the file has ${bytes.length}`);
  }
  return { dtype: type.name, shape, data: decodeBody(view, headerLen, count, type.name) };
}

function decodeBody(view: DataView, offset: number, count: number, dtype: IdxDtype): IdxData {
  // Copy into fresh, aligned typed arrays; multi-byte types are big-endian on disk.
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + count));
    case 'int8':
      return new Int8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + count));
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/** Read an IDX file from disk (gzipped or not). */
export async function readIdx(file: string): Promise<IdxArray> {
  let raw: Uint8Array;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new NmlabError('NOT_FOUND', `cannot read IDX file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseIdx(raw, file);
}

/** IDX images: uint8, N×H×W (grey) or N×H×W×C. */
export interface IdxImages {
  count: number;
  height: number;
  width: number;
  channels: number;
  /** N×H×W×C, C order. */
  pixels: Uint8Array;
}

/** Read an MNIST-style image file and check it is uint8 with 3 or 4 dimensions. */
export async function readIdxImages(file: string): Promise<IdxImages> {
  const a = await readIdx(file);
  if (a.dtype !== 'uint8') throw bad(file, `images must be uint8 (ubyte), found ${a.dtype}`);
  if (a.shape.length !== 3 && a.shape.length !== 4) {
    throw bad(file, `images need 3 (N×H×W) or 4 (N×H×W×C) dimensions, found ${a.shape.length} — is this a labels file?`);
  }
  const [count, height, width, channels = 1] = a.shape;
  if (channels !== 1 && channels !== 3) throw bad(file, `images need 1 or 3 channels, found ${channels}`);
  return { count, height, width, channels, pixels: a.data as Uint8Array };
}

/** Read an MNIST-style label file (uint8 or int32, one dimension) into int32 labels. */
export async function readIdxLabels(file: string): Promise<Int32Array> {
  const a = await readIdx(file);
  if (a.shape.length !== 1) throw bad(file, `labels need 1 dimension, found ${a.shape.length} (${a.shape.join('×')}) — is this an images file?`);
  if (a.dtype !== 'uint8' && a.dtype !== 'int32' && a.dtype !== 'int16' && a.dtype !== 'int8') {
    throw bad(file, `labels must be integers, found ${a.dtype}`);
  }
  return Int32Array.from(a.data as ArrayLike<number>);
}

/** Read an image/label IDX pair and check the counts agree, naming both files if not. */
export async function readIdxPair(imagesFile: string, labelsFile: string): Promise<{ images: IdxImages; labels: Int32Array }> {
  // One after the other, so that when both are unreadable the error always names the images file.
  const images = await readIdxImages(imagesFile);
  const labels = await readIdxLabels(labelsFile);
  if (images.count !== labels.length) {
    throw new NmlabError(
      'BAD_FILE',
      `${basename(imagesFile)} has ${images.count} images but ${basename(labelsFile)} has ${labels.length} labels; they must be a matching pair`,
    );
  }
  return { images, labels };
}

/** Encode a uint8 array as IDX (type 0x08), optionally gzipped. */
export function encodeIdxUint8(shape: number[], data: Uint8Array, gzip = true): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new NmlabError('INTERNAL', `IDX shape [${shape.join(', ')}] does not match ${data.length} values`);
  const header = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(header.buffer);
  header[2] = 0x08;
  header[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const bytes = new Uint8Array(header.length + data.length);
  bytes.set(header, 0);
  bytes.set(data, header.length);
  return gzip ? gzipSync(bytes, { level: 9 }) : bytes;
}

/** Write a uint8 IDX file (gzipped when the name ends in `.gz`). */
export async function writeIdxUint8(file: string, shape: number[], data: Uint8Array): Promise<void> {
  await writeFile(file, encodeIdxUint8(shape, data, file.endsWith('.gz')));
}
