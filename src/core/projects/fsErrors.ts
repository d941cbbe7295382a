import { NmlabError } from '../../shared/errors';

/** The errno code of a Node fs error, if it is one. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;
}

/** Turn a Node fs error into an NmlabError that names the path and what to do. */
export function fsError(err: unknown, action: string, path: string): NmlabError {
  if (err instanceof NmlabError) return err;
  const code = errnoCode(err);
  switch (code) {
    case 'ENOENT':
      return new NmlabError('NOT_FOUND', `cannot ${action} ${path}: it does not exist`);
    case 'EACCES':
    case 'EPERM':
      return new NmlabError('BAD_REQUEST', `cannot ${action} ${path}: permission denied; pick a folder you can write to`);
    case 'ENOTDIR':
      return new NmlabError('BAD_REQUEST', `cannot ${action} ${path}: a part of the path is a file, not a folder`);
    case 'ENOSPC':
      return new NmlabError('BAD_REQUEST', `cannot ${action} ${path}: the disk is full`);
    case 'EROFS':
      return new NmlabError('BAD_REQUEST', `cannot ${action} ${path}: the file system is read-only`);
    default:
      return new NmlabError('INTERNAL', `cannot ${action} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
