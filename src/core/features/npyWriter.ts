/**
 * Writing a `.npy` file row-chunk by row-chunk, so feature extraction never holds the whole
 * matrix (DESIGN §3: large sets stream in chunks; memory stays bounded). The header is the one
 * numpy writes (format 1.0, padded so the data starts on a 64-byte boundary); rows go to a
 * temporary sibling and the file appears under its name only when complete (fsync + rename).
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NmlabError } from '../../shared/errors';

/** Header bytes of a C-order little-endian float32 array with this shape. */
export function float32NpyHeader(shape: number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const headerLen = total - 10;
  const text = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  const out = new Uint8Array(total);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, headerLen, true);
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  return out;
}

/** Appends float32 rows to a `.npy` of a known row count and width. */
export class NpyRowWriter {
  private rowsWritten = 0;
  private closed = false;

  private constructor(
    private readonly file: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
    private readonly rows: number,
    private readonly cols: number,
  ) {}

  /** Start writing `file` with shape [rows, cols]. */
  static async create(file: string, rows: number, cols: number): Promise<NpyRowWriter> {
    const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.write(float32NpyHeader([rows, cols]));
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    return new NpyRowWriter(file, tmp, fh, rows, cols);
  }

  /** Append whole rows (`data.length` must be a multiple of the width). */
  async append(data: Float32Array): Promise<void> {
    if (data.length % this.cols !== 0) throw new NmlabError('INTERNAL', `NpyRowWriter: ${data.length} values is not a whole number of ${this.cols}-wide rows`);
    const n = data.length / this.cols;
    if (this.rowsWritten + n > this.rows) throw new NmlabError('INTERNAL', `NpyRowWriter: ${this.rowsWritten + n} rows exceed the declared ${this.rows}`);
    await this.fh.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.rowsWritten += n;
  }

  /** Finish: check every row arrived, fsync, rename into place. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.rowsWritten !== this.rows) throw new NmlabError('INTERNAL', `NpyRowWriter: ${this.rowsWritten} of ${this.rows} rows written to ${this.file}`);
      await this.fh.sync();
      await this.fh.close();
      await rename(this.tmp, this.file);
    } catch (err) {
      await this.fh.close().catch(() => undefined);
      await rm(this.tmp, { force: true });
      throw err;
    }
  }

  /** Abandon the file (on error or cancellation): the target is never created. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}
