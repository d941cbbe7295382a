/**
 * DESIGN §5: paths inside a project are relative, and nothing outside the project is read or
 * written. Every path that comes from a manifest, a run config or a request goes through here.
 */
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { NmlabError } from '../../shared/errors';
import { errnoCode } from '../fs/errors';

function isWithin(root: string, target: string): boolean {
  const rel = relative(root, target);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

/**
 * The absolute path of `relPath` inside `projectDir`. Throws PATH_ESCAPE for an absolute path,
 * a path that climbs out with `..`, or one that leaves the project through a symbolic link
 * (checked on the deepest part of the path that exists, so it also guards files about to be
 * created).
 */
export async function resolveInside(projectDir: string, relPath: string): Promise<string> {
  const root = resolve(projectDir);
  if (relPath.includes('\0')) throw new NmlabError('PATH_ESCAPE', `path "${relPath.replace(/\0/g, '\\0')}" contains a NUL byte`);
  // Both separators count as absolute on Windows; reject either form everywhere so a project
  // made on one system behaves the same on another.
  if (isAbsolute(relPath) || /^[a-zA-Z]:[\\/]/.test(relPath) || relPath.startsWith('\\')) {
    throw new NmlabError('PATH_ESCAPE', `path "${relPath}" is absolute; paths in a project are relative to ${root}`);
  }
  const target = resolve(root, relPath);
  if (!isWithin(root, target)) throw new NmlabError('PATH_ESCAPE', `path "${relPath}" leads outside the project ${root}`);

  const realRoot = await realpathOr(root, root);
  // Walk up to the deepest existing ancestor and compare its real location with the root's.
  let probe = target;
  for (;;) {
    try {
      const real = await realpath(probe);
      const rest = relative(probe, target);
      const realTarget = rest ? join(real, rest) : real;
      if (!isWithin(realRoot, realTarget)) {
        throw new NmlabError('PATH_ESCAPE', `path "${relPath}" leads outside the project ${root} through a symbolic link`);
      }
      return target;
    } catch (err) {
      if (err instanceof NmlabError) throw err;
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      const up = dirname(probe);
      if (up === probe) return target;
      probe = up;
    }
  }
}

async function realpathOr(path: string, fallback: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return fallback;
  }
}
