/**
 * Crash-safe writes (DESIGN §5): write a sibling temporary file, fsync it, rename it over
 * the target, then fsync the folder so the rename itself is durable. A process killed at any
 * instant leaves either the old file or the new one, never a torn one.
 */
import { open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NmlabError } from '../../shared/errors';
import { causeCode, freeBytes, fsError } from './errors';

/**
 * Errors name `file` (see ./errors.ts); on a full disk the message also gives the bytes the
 * write needed and those free. The temporary file is removed on any failure.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fail = async (err: unknown): Promise<never> => {
    await rm(tmp, { force: true }).catch(() => undefined);
    const code = causeCode(err);
    if (code === 'ENOENT') throw new NmlabError('NOT_FOUND', `cannot write ${file}: the folder ${dirname(file)} does not exist; create it first or pick another path`);
    if (code !== 'ENOSPC') throw fsError(err, 'write', file);
    const neededBytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    throw fsError(err, 'write', file, { neededBytes, freeBytes: await freeBytes(dirname(file)) });
  };
  let handle;
  try {
    handle = await open(tmp, 'w', 0o644);
  } catch (err) {
    return fail(err);
  }
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    return fail(err);
  }
  await handle.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    return fail(err);
  }
  await syncDir(dirname(file));
}

/**
 * Remove the temporary files a process killed mid-write left in `dir` ({@link writeFileAtomic}
 * names them `.<file>.<pid>.<8 hex>.tmp`). Only `pid`'s: call it once that process is known to
 * be gone, so no rename of its can still come. Returns how many were removed.
 */
export async function removeTempsOf(dir: string, pid: number): Promise<number> {
  const mine = new RegExp(`^\\..+\\.${pid}\\.[0-9a-f]{8}\\.tmp$`);
  let n = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!mine.test(name)) continue;
    await rm(join(dir, name), { force: true });
    n++;
  }
  return n;
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

async function syncDir(dir: string): Promise<void> {
  // Not every platform lets a directory be opened for fsync (Windows); durability there
  // rests on the rename alone.
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    /* best effort */
  }
}
