/**
 * The one place that turns Node file-system errors into messages a user can act on (issue 12
 * item 1). Every message names the path and the problem; callers say what they were doing.
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { NmlabError } from '../../shared/errors';

/** The errno code of a Node fs error, if it is one. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;
}

/** The path a Node fs error carries (`err.path`), if any. */
export function errnoPath(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'path' in err && typeof (err as { path: unknown }).path === 'string'
    ? (err as { path: string }).path
    : undefined;
}

/** Extra facts for an ENOSPC message: how much the write needed and how much was free. */
export interface SpaceHint {
  neededBytes?: number;
  freeBytes?: number;
}

/** "12.3 MB" style sizes for messages. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** Free bytes on the file system holding `path` (or its nearest existing parent); undefined when unknown. */
export async function freeBytes(path: string): Promise<number | undefined> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      if (dirname(p) === p) return undefined;
    }
  }
}

/**
 * Turn a Node fs error into an NmlabError that names `path`, the problem and what to do.
 * `action` reads after "cannot": "read", "write", "create the project in".
 */
export function fsError(err: unknown, action: string, path: string, space: SpaceHint = {}): NmlabError {
  if (err instanceof NmlabError) return err;
  const out = fsErrorOf(err, action, path, space);
  // Kept so a caller higher up can still tell a full disk from a missing file.
  Object.defineProperty(out, 'cause', { value: err, enumerable: false });
  return out;
}

/** The errno code behind `err`, looking through an NmlabError made by {@link fsError}. */
export function causeCode(err: unknown): string | undefined {
  // An NmlabError's own `code` is its NMLab code (BAD_REQUEST …), not an errno.
  return err instanceof NmlabError ? errnoCode(err.cause) : errnoCode(err);
}

function fsErrorOf(err: unknown, action: string, path: string, space: SpaceHint): NmlabError {
  const code = errnoCode(err);
  const at = `cannot ${action} ${path}`;
  switch (code) {
    case 'ENOENT':
      return new NmlabError('NOT_FOUND', `${at}: it does not exist`);
    case 'EISDIR':
      return new NmlabError('BAD_REQUEST', `${at}: it is a folder, not a file; name a file`);
    case 'ENOTDIR':
      return new NmlabError('BAD_REQUEST', `${at}: a part of the path is a file, not a folder`);
    case 'EACCES':
    case 'EPERM':
      return new NmlabError('BAD_REQUEST', `${at}: permission denied; pick a folder you can write to or fix its permissions`);
    case 'ENOSPC':
    case 'EDQUOT': {
      const need = space.neededBytes !== undefined ? `; it needs ${formatBytes(space.neededBytes)}` : '';
      const free = space.freeBytes !== undefined ? ` and ${formatBytes(space.freeBytes)} are free` : '';
      return new NmlabError('BAD_REQUEST', `${at}: the disk is full${need}${free}; free some space on it or choose a folder on another disk`);
    }
    case 'EMFILE':
    case 'ENFILE':
      return new NmlabError('BAD_REQUEST', `${at}: too many open files; close other programs or raise the limit (ulimit -n) and retry`);
    case 'EROFS':
      return new NmlabError('BAD_REQUEST', `${at}: the file system is read-only`);
    case 'EEXIST':
      return new NmlabError('ALREADY_EXISTS', `${at}: it already exists`);
    case 'ENAMETOOLONG':
      return new NmlabError('BAD_REQUEST', `${at}: the name is too long`);
    default:
      return new NmlabError('INTERNAL', `${at}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * An error that escaped to an entry point (CLI, worker): an fs error carrying a path becomes the
 * same message {@link fsError} gives; anything else is returned as is.
 */
export function describeEscapedError(err: unknown): unknown {
  if (err instanceof NmlabError) return err;
  const code = errnoCode(err);
  const path = errnoPath(err);
  if (code && path && /^E[A-Z]+$/.test(code)) {
    const syscall = typeof err === 'object' && err !== null && 'syscall' in err ? String((err as { syscall: unknown }).syscall) : '';
    return fsError(err, syscallAction(syscall), path);
  }
  return err;
}

function syscallAction(syscall: string): string {
  switch (syscall) {
    case 'open':
    case 'read':
      return 'open';
    case 'mkdir':
      return 'create the folder';
    case 'scandir':
      return 'list the folder';
    case 'write':
    case 'rename':
    case 'copyfile':
      return 'write';
    case 'unlink':
    case 'rmdir':
      return 'remove';
    default:
      return 'access';
  }
}
