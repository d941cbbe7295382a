/**
 * A full disk (issue 12 item 4), on a small tmpfs: commands that write fail with a message
 * naming the folder and, where it is known, the space needed and free; they leave no
 * half-written file, no temporary file and no empty run folder. Mounting needs root (or
 * CAP_SYS_ADMIN); elsewhere the test is skipped and says why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy } from '../../src/core/arrays/npy';

const root = join(__dirname, '..', '..');
let work: string;
let mnt: string;
let home: string;
let skipReason: string | null = null;

function nmlab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'nmlab.mjs'), ...args], { cwd: work, env: { ...process.env, NMLAB_HOME: home }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    out.push(prefix + e.name);
    if (e.isDirectory()) out.push(...(await tree(join(dir, e.name), `${prefix}${e.name}/`)));
  }
  return out.sort();
}

/** Fill the mount until the kernel says no (a partial write leaves the file at the limit). */
function fill(name: string): void {
  try {
    writeFileSync(join(mnt, name), Buffer.alloc(8 << 20, 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nmlab-enospc-'));
  home = join(work, 'home');
  mnt = join(work, 'small');
  await mkdir(mnt);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt], { encoding: 'utf8' });
  if (r.status !== 0) {
    skipReason = `cannot mount a small tmpfs here (${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}); needs root or CAP_SYS_ADMIN`;
    return;
  }
  execFileSync(process.execPath, [join(root, 'scripts', 'build-node.mjs')], { cwd: root, stdio: 'pipe' });
  // Inputs live outside the small disk.
  const n = 100_000;
  await writeFile(join(work, 'labels.npy'), encodeNpy({ dtype: 'int64', shape: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 10)) }));
  await writeFile(join(work, 'labels-40k.npy'), encodeNpy({ dtype: 'int64', shape: [40_000], data: BigInt64Array.from({ length: 40_000 }, (_, i) => BigInt(i % 10)) }));
  await writeFile(join(work, 'features.npy'), encodeNpy({ dtype: 'float32', shape: [n / 100, 64], data: Float32Array.from({ length: (n / 100) * 64 }, (_, i) => Math.sin(i)) }));
  await writeFile(join(work, 'labels-small.npy'), encodeNpy({ dtype: 'int64', shape: [n / 100], data: BigInt64Array.from({ length: n / 100 }, (_, i) => BigInt(i % 10)) }));
  await writeFile(join(work, 'features-big.npy'), encodeNpy({ dtype: 'float32', shape: [n / 10, 64], data: Float32Array.from({ length: (n / 10) * 64 }, (_, i) => Math.cos(i)) }));
  await writeFile(join(work, 'labels-big.npy'), encodeNpy({ dtype: 'int64', shape: [n / 10], data: BigInt64Array.from({ length: n / 10 }, (_, i) => BigInt(i % 10)) }));
  const created = nmlab('project', 'create', join(mnt, 'proj'), '--name', 'Small disk');
  if (created.code !== 0) throw new Error(created.stderr);
}, 120_000);

afterAll(async () => {
  if (!skipReason) spawnSync('umount', [mnt]);
  await rm(work, { recursive: true, force: true });
});

describe('a full disk', () => {
  it('noise: names the file, the space needed and free; no output, no temporary file', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = nmlab('noise', '--labels', join(work, 'labels.npy'), '--type', 'symmetric', '--ratio', '0.2', '--seed', '1', '--out', join(mnt, 'noisy.npy'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^nmlab noise: cannot write ${join(mnt, 'noisy.npy')}: the disk is full; it needs 781\\.4 KiB and \\d+\\.\\d KiB are free; free some space`));
    expect(r.stderr).not.toMatch(/^\s+at /m);
    return tree(mnt).then((t) => expect(t.filter((p) => !p.startsWith('proj'))).toEqual([]));
  });

  it('noise --flipped-out: when the second file does not fit, the first is removed too (both or neither)', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    // 320 KB of noisy labels fit; 288 KB of flipped indices after them do not.
    const r = nmlab('noise', '--labels', join(work, 'labels-40k.npy'), '--type', 'symmetric', '--ratio', '0.9', '--seed', '1', '--out', join(mnt, 'noisy.npy'), '--flipped-out', join(mnt, 'flipped.npy'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^nmlab noise: cannot write ${join(mnt, 'flipped.npy')}: the disk is full; it needs \\d+\\.\\d KiB`));
    expect((await tree(mnt)).filter((p) => !p.startsWith('proj'))).toEqual([]);
  });

  it('dataset import: names the datasets folder and the dataset size; the project is untouched', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const before = await tree(join(mnt, 'proj'));
    const r = nmlab('dataset', 'import', '--project', join(mnt, 'proj'), '--name', 'big', '--features', join(work, 'features-big.npy'), '--labels', join(work, 'labels-big.npy'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^nmlab dataset: cannot write dataset "big" into ${join(mnt, 'proj', 'datasets')}: the disk is full; it needs 2\\.5 MiB and \\d+\\.\\d KiB are free`));
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(await tree(join(mnt, 'proj'))).toEqual(before);
  });

  it('spectrum --project on a disk with no space left: a clear error and no empty run folder', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    fill('filler');
    const before = await tree(join(mnt, 'proj'));
    const r = nmlab('spectrum', '--features', join(work, 'features.npy'), '--project', join(mnt, 'proj'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${join(mnt, 'proj', 'runs')}/[^ ]+: the disk is full`));
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(await tree(join(mnt, 'proj'))).toEqual(before);
    await rm(join(mnt, 'filler'));
  });
});
