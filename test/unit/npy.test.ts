import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeNpy, encodeNpy, iterateNpyRows, readNpy, readNpyHeader, readNpyRows, writeNpy, type NpyArray } from '../../src/core/arrays/npy';
import { featureMatrix, labelVector, checkSameCount } from '../../src/core/arrays/validate';

const dir = new URL('../fixtures/spectrum/npy/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, { shape: number[]; data: number[] }>;
const asNumbers = (a: NpyArray): number[] => Array.from(a.data as ArrayLike<number | bigint>, (v) => Number(v));

describe('readNpy on files written by numpy', () => {
  const dtypes: Record<string, string> = { f4: 'float32', f8: 'float64', i4: 'int32', i8: 'int64', u1: 'uint8', vec_i8: 'int64' };
  for (const [name, dtype] of Object.entries(dtypes)) {
    it(`${name}.npy → ${dtype}`, async () => {
      const a = await readNpy(join(dir, `${name}.npy`));
      expect(a.dtype).toBe(dtype);
      expect(a.shape).toEqual(expected[name].shape);
      expect(asNumbers(a)).toEqual(expected[name].data);
    });
  }
  it('reads format versions 2.0 and 3.0', async () => {
    for (const v of [2, 3]) {
      const file = join(dir, `f4_v${v}.npy`);
      expect((await readNpyHeader(file)).version).toBe(v);
      expect(asNumbers(await readNpy(file))).toEqual(expected.f4.data);
    }
  });
});

describe('readNpy rejects what it cannot read, naming the file', () => {
  const cases: [string, RegExp][] = [
    ['bad_fortran', /bad_fortran\.npy: .*Fortran order/],
    ['bad_bigendian', /bad_bigendian\.npy: unsupported dtype '>f4'.*big-endian/],
    ['bad_bool', /bad_bool\.npy: unsupported dtype '\|b1'/],
    ['bad_complex', /bad_complex\.npy: unsupported dtype '<c8'/],
    ['bad_truncated', /bad_truncated\.npy: truncated/],
    ['bad_magic', /bad_magic\.npy: not a \.npy file/],
  ];
  for (const [name, re] of cases) {
    it(name, async () => {
      await expect(readNpy(join(dir, `${name}.npy`))).rejects.toThrow(re);
      await expect(readNpy(join(dir, `${name}.npy`))).rejects.toMatchObject({ code: 'BAD_FILE' });
    });
  }
  it('missing file → NOT_FOUND', async () => {
    await expect(readNpy(join(dir, 'nope.npy'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('encodeNpy / writeNpy', () => {
  it('writes the same bytes numpy.save does (v1.0, header padded to 64)', () => {
    for (const name of ['f4', 'f8', 'i4', 'i8', 'u1', 'vec_i8']) {
      const bytes = readFileSync(join(dir, `${name}.npy`));
      const arr = decodeNpy(bytes, name);
      expect(Buffer.from(encodeNpy(arr)).equals(bytes)).toBe(true);
    }
  });
  it('round-trips through a file atomically and streams rows in chunks', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nmlab-npy-'));
    const file = join(tmp, 'x.npy');
    const data = Float32Array.from({ length: 7 * 3 }, (_, i) => i * 0.5 - 2);
    await writeNpy(file, { dtype: 'float32', shape: [7, 3], data });
    const back = await readNpy(file);
    expect(back.shape).toEqual([7, 3]);
    expect(Array.from(back.data as Float32Array)).toEqual(Array.from(data));
    const rows = await readNpyRows(file, 5, 10);
    expect(rows.shape).toEqual([2, 3]);
    expect(Array.from(rows.data as Float32Array)).toEqual(Array.from(data.subarray(15)));
    const starts: number[] = [];
    const all: number[] = [];
    for await (const chunk of iterateNpyRows(file, 3)) {
      starts.push(chunk.start);
      all.push(...(chunk.data as Float32Array));
    }
    expect(starts).toEqual([0, 3, 6]);
    expect(all).toEqual(Array.from(data));
    // Reused buffers: same values, chunks alternate between two buffers.
    const seen: number[] = [];
    const bufs: ArrayBufferLike[] = [];
    for await (const chunk of iterateNpyRows(file, 2, { reuseBuffers: true })) {
      seen.push(...(chunk.data as Float32Array));
      bufs.push(chunk.data.buffer);
    }
    expect(seen).toEqual(Array.from(data));
    expect(bufs).toHaveLength(4);
    expect(bufs[0]).toBe(bufs[2]);
    expect(bufs[1]).toBe(bufs[3]);
    expect(bufs[0]).not.toBe(bufs[1]);
  });
  it('rejects a data/shape mismatch and a wrong typed array', () => {
    expect(() => encodeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array(3) })).toThrow(/4 elements/);
    expect(() => encodeNpy({ dtype: 'float64', shape: [2], data: new Float32Array(2) })).toThrow(/Float64Array/);
  });
  it('trailing garbage is reported', () => {
    const bytes = Buffer.concat([readFileSync(join(dir, 'f4.npy')), Buffer.from([1, 2, 3])]);
    expect(() => decodeNpy(bytes, 'x.npy')).toThrow(/x\.npy: 3 unexpected bytes/);
  });
});

describe('validation', () => {
  it('featureMatrix finds NaN/Inf with row and column', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nmlab-npy-'));
    const file = join(tmp, 'nan.npy');
    const data = new Float32Array(6);
    data[4] = Number.POSITIVE_INFINITY;
    writeFileSync(file, encodeNpy({ dtype: 'float32', shape: [2, 3], data }));
    const arr = decodeNpy(readFileSync(file), file);
    expect(() => featureMatrix(arr, file)).toThrow(/nan\.npy: non-finite value Infinity at row 1, column 1/);
    expect(() => featureMatrix({ dtype: 'float32', shape: [6], data }, 'v.npy')).toThrow(/v\.npy: features must be a 2-D array/);
  });
  it('labelVector checks integrality and range; counts must match', () => {
    expect(Array.from(labelVector({ dtype: 'int64', shape: [3], data: BigInt64Array.from([0n, 2n, 1n]) }, 'y.npy', 3))).toEqual([0, 2, 1]);
    expect(() => labelVector({ dtype: 'int64', shape: [3], data: BigInt64Array.from([0n, 3n, 1n]) }, 'y.npy', 3)).toThrow(/y\.npy: label 1 is 3, outside 0\.\.2/);
    expect(() => labelVector({ dtype: 'float32', shape: [2], data: Float32Array.from([0, 1.5]) }, 'y.npy')).toThrow(/label 1 is 1\.5/);
    expect(() => labelVector({ dtype: 'int32', shape: [2], data: Int32Array.from([0, -1]) }, 'y.npy')).toThrow(/label 1 is -1/);
    expect(() => checkSameCount('F.npy', 10, 'y.npy', 9)).toThrow(/F\.npy has 10 samples but y\.npy has 9 labels/);
  });
});
