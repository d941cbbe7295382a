/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), the on-disk format of NMLab's feature
 * cache and label files (DESIGN §3, §5) so that Python users can open them.
 *
 * Supported: little-endian float32, float64, int32, int64, uint8 (on little-endian hosts: x64, arm64),
 * C order. Anything else (Fortran order, big-endian, other dtypes, object arrays) is rejected
 * with an NmlabError('BAD_FILE') that names the file and the problem; NMLab never guesses.
 *
 * Format reference: numpy/lib/format.py — magic `\x93NUMPY`, major/minor version bytes, a
 * little-endian header length (uint16 for v1, uint32 for v2/v3), then a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (M, D), }` padded with spaces and a
 * newline so that the data starts at a multiple of 64 bytes.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { NmlabError } from '../../shared/errors';
import { writeFileAtomic } from '../fs/atomic';
import { fsError } from '../fs/errors';

/** Element types NMLab reads and writes. */
export type NpyDtype = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8';
/** The typed array that holds each dtype. */
export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** An n-dimensional array as read from or written to a `.npy` file (C order). */
export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

/** What the header of a `.npy` file says, plus where its data starts. */
export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the first element. */
  dataOffset: number;
  /** Format major version (1, 2 or 3). */
  version: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR: Record<string, NpyDtype> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<i4': 'int32',
  '<i8': 'int64',
  '|u1': 'uint8',
  '<u1': 'uint8',
};

const DESCR_OUT: Record<NpyDtype, string> = {
  float32: '<f4',
  float64: '<f8',
  int32: '<i4',
  int64: '<i8',
  uint8: '|u1',
};

/** Bytes per element of each dtype. */
export const NPY_ITEMSIZE: Record<NpyDtype, number> = { float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1 };

function bad(file: string, problem: string): NmlabError {
  return new NmlabError('BAD_FILE', `${file}: ${problem}`);
}

/**
 * Parses the header at the start of `bytes` (which must hold at least the whole header).
 * Returns `undefined` when more bytes are needed to see the whole header.
 */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader | undefined {
  if (bytes.length < 10) return undefined;
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw bad(file, 'not a .npy file (missing the \\x93NUMPY magic); save arrays with numpy.save');
  }
  const major = bytes[6];
  if (major !== 1 && major !== 2 && major !== 3) throw bad(file, `unsupported .npy format version ${major}.${bytes[7]} (NMLab reads 1.0, 2.0 and 3.0)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else {
    if (bytes.length < 12) return undefined;
    headerLen = view.getUint32(8, true);
    start = 12;
  }
  if (bytes.length < start + headerLen) return undefined;
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw bad(file, `malformed .npy header (expected descr, fortran_order and shape): ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const dtype = DESCR[descr];
  if (!dtype) {
    const hint = descr.startsWith('>') ? 'big-endian data; convert with arr.astype(arr.dtype.newbyteorder("<"))' : 'convert with arr.astype(np.float32) (features) or arr.astype(np.int64) (labels)';
    throw bad(file, `unsupported dtype '${descr}' (NMLab reads float32, float64, int32, int64, uint8 little-endian): ${hint}`);
  }
  if (fortran === 'True') throw bad(file, 'array is stored in Fortran order; save it in C order with numpy.save(path, np.ascontiguousarray(arr))');
  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const v = Number(p.replace(/L$/, ''));
    if (!Number.isSafeInteger(v) || v < 0) throw bad(file, `malformed shape (${shapeText}) in the .npy header`);
    shape.push(v);
  }
  return { dtype, shape, dataOffset: start + headerLen, version: major };
}

/** Number of elements of an array with this shape (1 for a 0-d array). */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function typedView(dtype: NpyDtype, buf: ArrayBufferLike, byteOffset: number, length: number): NpyData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf, byteOffset, length);
    case 'float64':
      return new Float64Array(buf, byteOffset, length);
    case 'int32':
      return new Int32Array(buf, byteOffset, length);
    case 'int64':
      return new BigInt64Array(buf, byteOffset, length);
    case 'uint8':
      return new Uint8Array(buf, byteOffset, length);
  }
}

/**
 * A typed array over `bytes`: a view when the bytes are aligned for the element type and own
 * their buffer outright (large reads), otherwise a copy (Node pools small Buffers, and a data
 * offset is only guaranteed 16/64-aligned in files numpy wrote).
 */
function makeTyped(dtype: NpyDtype, bytes: Uint8Array): NpyData {
  const size = NPY_ITEMSIZE[dtype];
  const length = bytes.length / size;
  if (bytes.byteOffset % size === 0 && bytes.buffer.byteLength - bytes.length < 4096) return typedView(dtype, bytes.buffer, bytes.byteOffset, length);
  const buf = new ArrayBuffer(bytes.length);
  new Uint8Array(buf).set(bytes);
  return typedView(dtype, buf, 0, length);
}

/** Decodes a whole `.npy` file held in memory; `file` only names it in errors. */
export function decodeNpy(bytes: Uint8Array, file: string): NpyArray {
  const header = parseNpyHeader(bytes, file);
  if (!header) throw bad(file, `truncated .npy header (${bytes.length} bytes)`);
  const need = shapeSize(header.shape) * NPY_ITEMSIZE[header.dtype];
  const have = bytes.length - header.dataOffset;
  if (have < need) throw bad(file, `truncated: shape (${header.shape.join(', ')}) of ${header.dtype} needs ${need} data bytes, the file has ${have}`);
  if (have > need) throw bad(file, `${have - need} unexpected bytes after the data of shape (${header.shape.join(', ')}); the file may be corrupt`);
  return { dtype: header.dtype, shape: header.shape, data: makeTyped(header.dtype, bytes.subarray(header.dataOffset, header.dataOffset + need)) };
}

/** Reads a whole `.npy` file. */
export async function readNpy(file: string): Promise<NpyArray> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw ioError(file, err);
  }
  return decodeNpy(bytes, file);
}

function ioError(file: string, err: unknown): NmlabError {
  return fsError(err, 'read', file);
}

/** Open `file` for reading; a failure names the file (NmlabError via ioError). */
async function openForReading(file: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw ioError(file, err);
  }
  // A folder opens fine on Linux and fails only at the first read, with no path in the error.
  if ((await fh.stat()).isDirectory()) {
    await fh.close();
    throw ioError(file, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
  }
  return fh;
}

/** Reads only the header of a `.npy` file (and checks that the file is long enough). */
export async function readNpyHeader(file: string): Promise<NpyHeader> {
  const fh = await openForReading(file);
  try {
    return await headerOf(fh, file);
  } finally {
    await fh.close();
  }
}

async function headerOf(fh: FileHandle, file: string): Promise<NpyHeader> {
  let size = 256;
  for (;;) {
    const buf = Buffer.alloc(size);
    const { bytesRead } = await fh.read(buf, 0, size, 0);
    const header = parseNpyHeader(buf.subarray(0, bytesRead), file);
    if (header) {
      const stat = await fh.stat();
      const need = header.dataOffset + shapeSize(header.shape) * NPY_ITEMSIZE[header.dtype];
      if (stat.size < need) throw bad(file, `truncated: the header promises ${need} bytes, the file has ${stat.size}`);
      // Same rule as decodeNpy: streamed and whole-file readers accept exactly the same files.
      if (stat.size > need) throw bad(file, `${stat.size - need} unexpected bytes after the data of shape (${header.shape.join(', ')}); the file may be corrupt`);
      return header;
    }
    if (bytesRead < size) throw bad(file, `truncated .npy header (${bytesRead} bytes)`);
    size *= 4;
    if (size > 1 << 24) throw bad(file, 'the .npy header is larger than 16 MiB; the file is not a valid array');
  }
}

/**
 * Reads rows `[start, start + count)` along the first axis without loading the rest of the
 * file (memory stays bounded by the slice). The result has shape `[count', ...rest]`, where
 * count' is clipped to the rows that exist.
 */
export async function readNpyRows(file: string, start: number, count: number): Promise<NpyArray> {
  const fh = await openForReading(file);
  try {
    const header = await headerOf(fh, file);
    return await readRowsFrom(fh, header, file, start, count);
  } finally {
    await fh.close();
  }
}

async function readRowsFrom(fh: FileHandle, header: NpyHeader, file: string, start: number, count: number, target?: ArrayBuffer): Promise<NpyArray> {
  if (header.shape.length === 0) throw bad(file, 'a 0-d array has no rows');
  const rows = header.shape[0];
  if (!Number.isInteger(start) || start < 0 || start > rows) throw new NmlabError('BAD_REQUEST', `${file}: row ${start} is out of range (the array has ${rows} rows)`);
  const n = Math.max(0, Math.min(count, rows - start));
  const rowBytes = shapeSize(header.shape.slice(1)) * NPY_ITEMSIZE[header.dtype];
  // Read straight into the buffer the typed array will view: no second copy, and with
  // `target` no fresh memory at all (first-touch page faults dominate on some VMs).
  const bytes = target && target.byteLength >= n * rowBytes ? new Uint8Array(target, 0, n * rowBytes) : new Uint8Array(new ArrayBuffer(n * rowBytes));
  let off = 0;
  while (off < bytes.length) {
    const { bytesRead } = await fh.read(bytes, off, bytes.length - off, header.dataOffset + start * rowBytes + off);
    if (bytesRead === 0) throw bad(file, `truncated while reading rows ${start}..${start + n}`);
    off += bytesRead;
  }
  return { dtype: header.dtype, shape: [n, ...header.shape.slice(1)], data: typedView(header.dtype, bytes.buffer, 0, bytes.length / NPY_ITEMSIZE[header.dtype]) };
}

/** One chunk yielded by {@link iterateNpyRows}. */
export interface NpyRowChunk extends NpyArray {
  /** Index of the chunk's first row in the whole array. */
  start: number;
}

/** Options of {@link iterateNpyRows}. */
export interface IterateNpyOptions {
  /**
   * Read into two buffers used in turn instead of a fresh one per chunk. A yielded chunk's
   * data is then overwritten when the chunk two places after it is read: the consumer must
   * be done with chunk k before asking for chunk k+2 (reading one ahead is fine).
   */
  reuseBuffers?: boolean;
}

/**
 * Streams a `.npy` file in chunks of `chunkRows` rows along the first axis, so arrays larger
 * than memory can be reduced (e.g. the Gram matrix of a feature cache) with memory bounded by
 * one chunk (two with read-ahead).
 */
export async function* iterateNpyRows(file: string, chunkRows: number, opts: IterateNpyOptions = {}): AsyncGenerator<NpyRowChunk, void, undefined> {
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new NmlabError('BAD_REQUEST', `iterateNpyRows: chunkRows must be a positive integer, got ${chunkRows}`);
  const fh = await openForReading(file);
  try {
    const header = await headerOf(fh, file);
    if (header.shape.length === 0) throw bad(file, 'a 0-d array has no rows');
    const rows = header.shape[0];
    const chunkBytes = Math.min(chunkRows, rows) * shapeSize(header.shape.slice(1)) * NPY_ITEMSIZE[header.dtype];
    const buffers = opts.reuseBuffers ? [new ArrayBuffer(chunkBytes), new ArrayBuffer(chunkBytes)] : undefined;
    let k = 0;
    for (let start = 0; start < rows; start += chunkRows) {
      const chunk = await readRowsFrom(fh, header, file, start, chunkRows, buffers?.[k++ % 2]);
      yield { ...chunk, start };
    }
  } finally {
    await fh.close();
  }
}

/** Encodes an array as a `.npy` (version 1.0, or 2.0 when the header needs it) byte string. */
export function encodeNpy(arr: NpyArray): Uint8Array {
  const { dtype, shape, data } = arr;
  const n = shapeSize(shape);
  if (data.length !== n) throw new NmlabError('BAD_REQUEST', `encodeNpy: shape (${shape.join(', ')}) has ${n} elements, data has ${data.length}`);
  const expected = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array }[dtype];
  if (!(data instanceof expected)) throw new NmlabError('BAD_REQUEST', `encodeNpy: dtype ${dtype} needs a ${expected.name}, got ${data.constructor.name}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR_OUT[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10;
  if (dict.length + 1 + prefix > 0xffff) {
    version = 2;
    prefix = 12;
  }
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const headerLen = total - prefix;
  const header = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

/** Writes an array as `.npy`, atomically (temporary file, fsync, rename; DESIGN §5). */
export async function writeNpy(file: string, arr: NpyArray): Promise<void> {
  await writeFileAtomic(file, encodeNpy(arr));
}
