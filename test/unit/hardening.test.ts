/**
 * Issue 12: labels are validated before they are converted, one place maps errno codes to
 * messages, writers refuse folders that are not projects, and a failed write leaves nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_CLASSES, classCountOf, labelVector, unseenClassWarning } from '../../src/core/arrays/validate';
import { decodeNpy, encodeNpy, readNpyHeader, readNpy } from '../../src/core/arrays/npy';
import { parseFeaturesCsv } from '../../src/core/arrays/csv';
import { describeEscapedError, formatBytes, fsError } from '../../src/core/fs/errors';
import { writeFileAtomic } from '../../src/core/fs/atomic';
import { createRunFolder, markInterrupted, readRunStatus, setRunStatus } from '../../src/core/runs/files';
import { spawnSync } from 'node:child_process';
import { requireProject } from '../../src/core/projects/manifest';
import { checkDatasetName } from '../../src/core/datasets/store';
import { createExperiment } from '../../src/core/experiments/store';
import { NmlabError } from '../../src/shared/errors';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-harden-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const f64 = (...v: number[]) => ({ dtype: 'float64' as const, shape: [v.length], data: Float64Array.from(v) });
const i64 = (...v: bigint[]) => ({ dtype: 'int64' as const, shape: [v.length], data: BigInt64Array.from(v) });

describe('labelVector checks every value before the int32 store', () => {
  it.each([
    ['2^40 as float64 (would wrap to 0)', f64(0, 2 ** 40, 1)],
    ['2^32+3 as int64 (would wrap to 3)', i64(0n, 2n ** 32n + 3n, 1n)],
    ['2^63-1 as int64', i64(0n, 2n ** 63n - 1n)],
    ['2^31-1 as float64', f64(2 ** 31 - 1)],
    ['the class limit itself', f64(MAX_CLASSES)],
  ])('rejects %s naming the file and row', (_what, arr) => {
    expect(() => labelVector(arr, 'y.npy')).toThrow(/^y\.npy: label \d is \d+; NMLab supports at most 10000 classes/);
  });

  it('names the exact int64 value, not a rounded one', () => {
    expect(() => labelVector(i64(2n ** 63n - 1n), 'y.npy')).toThrow(/label 0 is 9223372036854775807;/);
  });

  it('rejects negatives and non-integers, and values at or above a given class count', () => {
    expect(() => labelVector(f64(0, -1), 'y.npy')).toThrow(/label 1 is -1; class indices must be 0, 1, 2/);
    expect(() => labelVector(f64(0.5), 'y.npy')).toThrow(/label 0 is 0.5, not an integer/);
    expect(() => labelVector(f64(0, 3), 'y.npy', 3)).toThrow(/label 1 is 3, outside 0..2 for 3 classes/);
  });

  it('keeps valid labels exactly', () => {
    expect(Array.from(labelVector(i64(0n, 9999n, 7n), 'y.npy'))).toEqual([0, 9999, 7]);
  });

  it('csv labels are checked before the int32 store too', () => {
    expect(() => parseFeaturesCsv('a,y\n1,0\n2,1099511627776\n', 'x.csv', { labelColumn: 'y' })).toThrow(/x\.csv:3:2: label 1099511627776 is above the 10000-class limit/);
  });
});

describe('classCountOf: K is dense and bounded by the rows', () => {
  it('is max+1 when every class can have a sample', () => {
    expect(classCountOf(Int32Array.of(0, 2, 2, 1), 'y.npy')).toBe(3);
  });
  it('rejects one typo that would make K exceed the rows', () => {
    expect(() => classCountOf(Int32Array.of(0, 1, 9999, 1), 'y.npy')).toThrow(/y\.npy: label 2 is 9999, which implies 10000 classes but the file has only 4 rows/);
  });
});

describe('unseenClassWarning', () => {
  it('names the test classes the training labels never use and counts their rows', () => {
    expect(unseenClassWarning(Int32Array.of(0, 1, 1), Int32Array.of(0, 2, 2, 3), 'train.npy', 'test.npy')).toBe(
      'test.npy: 3 test row(s) have class(es) 2, 3 that never occur in train.npy; no model trained on it can predict them',
    );
    expect(unseenClassWarning(Int32Array.of(0, 1), Int32Array.of(1, 0), 'a', 'b')).toBeNull();
  });
});

describe('.npy trailing bytes: the streaming and whole-file readers agree', () => {
  it('a folder named like an array is refused by both readers, naming it', async () => {
    await mkdir(join(tmp, 'folder.npy'));
    await expect(readNpy(join(tmp, 'folder.npy'))).rejects.toThrow(/folder\.npy: it is a folder, not a file/);
    await expect(readNpyHeader(join(tmp, 'folder.npy'))).rejects.toThrow(/folder\.npy: it is a folder, not a file/);
  });

  it('both reject a file with bytes after the data', async () => {
    const good = encodeNpy({ dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) });
    const file = join(tmp, 'trailing.npy');
    await writeFile(file, Buffer.concat([Buffer.from(good), Buffer.from([1, 2, 3])]));
    await expect(readNpy(file)).rejects.toThrow(/trailing\.npy: 3 unexpected bytes after the data of shape \(2, 2\)/);
    await expect(readNpyHeader(file)).rejects.toThrow(/trailing\.npy: 3 unexpected bytes after the data of shape \(2, 2\)/);
    expect(() => decodeNpy(good, 'ok.npy').shape).not.toThrow();
  });
});

describe('one errno → message map (src/core/fs/errors.ts)', () => {
  const errno = (code: string, path = '/p/x') => Object.assign(new Error(`${code}: boom, open '${path}'`), { code, path, syscall: 'open' });
  it.each([
    ['ENOENT', /cannot read \/p\/x: it does not exist/],
    ['EISDIR', /cannot read \/p\/x: it is a folder, not a file/],
    ['ENOTDIR', /cannot read \/p\/x: a part of the path is a file, not a folder/],
    ['EACCES', /cannot read \/p\/x: permission denied/],
    ['ENOSPC', /cannot read \/p\/x: the disk is full/],
    ['EMFILE', /cannot read \/p\/x: too many open files/],
  ])('%s', (code, re) => {
    const e = fsError(errno(code), 'read', '/p/x');
    expect(e).toBeInstanceOf(NmlabError);
    expect(e.message).toMatch(re);
    expect(e.message).not.toMatch(/boom/);
  });
  it('gives the space needed and free on a full disk', () => {
    expect(fsError(errno('ENOSPC'), 'write', '/p/x', { neededBytes: 3 * 1024 * 1024, freeBytes: 512 }).message).toBe(
      'cannot write /p/x: the disk is full; it needs 3.0 MiB and 512 B are free; free some space on it or choose a folder on another disk',
    );
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });
  it('maps an fs error that escaped to an entry point by its own path', () => {
    const mapped = describeEscapedError(Object.assign(new Error('EISDIR: illegal operation on a directory, read'), { code: 'EISDIR', path: '/data/feats', syscall: 'read' }));
    expect((mapped as Error).message).toBe('cannot open /data/feats: it is a folder, not a file; name a file');
    const other = new TypeError('x is not a function');
    expect(describeEscapedError(other)).toBe(other);
  });
});

describe('writeFileAtomic', () => {
  it('names a missing folder and a folder in the way, and leaves no temporary file', async () => {
    await expect(writeFileAtomic(join(tmp, 'nope', 'a.json'), '{}')).rejects.toThrow(`cannot write ${join(tmp, 'nope', 'a.json')}: the folder ${join(tmp, 'nope')} does not exist`);
    await mkdir(join(tmp, 'dir', 'a.json'), { recursive: true });
    await expect(writeFileAtomic(join(tmp, 'dir', 'a.json'), '{}')).rejects.toThrow(/a\.json: it is a folder, not a file/);
    expect(await readdir(join(tmp, 'dir'))).toEqual(['a.json']);
  });
});

describe('a worker killed mid-write', () => {
  it('leaves a temporary file that marking its run interrupted removes (only the dead process\'s)', async () => {
    const project = join(tmp, 'killed');
    await mkdir(project);
    const id = 'kill.j0000.a1';
    const dir = await createRunFolder(project, { id, kind: 'tune', createdAt: new Date().toISOString() });
    // A pid that surely is gone: a process that has exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    expect(deadPid).toBeGreaterThan(0);
    await setRunStatus(project, id, 'running', { pid: deadPid });
    // What writeFileAtomic leaves when SIGKILL lands between its write and its rename.
    const litter = `.status.json.${deadPid}.0badc0de.tmp`;
    const alive = `.metrics.jsonl.${process.pid}.12345678.tmp`;
    await writeFile(join(dir, litter), '{"status":"succ');
    await writeFile(join(dir, alive), 'x');
    expect(await markInterrupted(project, id, 'its worker was killed')).toBe('interrupted');
    const left = await readdir(dir);
    expect(left).not.toContain(litter);
    expect(left).toContain(alive); // a live process's write in progress is not touched
    expect((await readRunStatus(project, id))?.status).toBe('interrupted');
  });
});

describe('requireProject', () => {
  it('refuses a folder without nmlab.json and suggests the command that exists', async () => {
    await mkdir(join(tmp, 'plain'));
    expect(() => requireProject(join(tmp, 'plain'))).toThrow(/is not an NMLab project \(no nmlab\.json\); create one there with `nmlab project create/);
    expect(() => requireProject(join(tmp, 'missing'))).toThrow(/project folder .*missing does not exist/);
    expect(() => requireProject(join(tmp, 'plain'))).not.toThrow(/project init/);
  });

  it('the experiments API refuses a folder that is not a project and writes nothing there', async () => {
    await mkdir(join(tmp, 'plain-exp'));
    await expect(createExperiment(join(tmp, 'plain-exp'), {} as never)).rejects.toThrow(/plain-exp is not an NMLab project \(no nmlab\.json\)/);
    expect(await readdir(join(tmp, 'plain-exp'))).toEqual([]);
  });
});

describe('dataset names', () => {
  it('rejects a blank name and trims the rest', () => {
    expect(() => checkDatasetName('   ')).toThrow(/a dataset needs a name/);
    expect(checkDatasetName('  Fashion ')).toBe('Fashion');
  });
});
