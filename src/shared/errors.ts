/**
 * One error type for the whole app (STYLE.md convention 7). Every failure carries a literal
 * `code`; messages name the file or object and the fix. Over a transport an error travels as
 * `{name, code, message}` and is rebuilt on the other side.
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'BAD_FILE'
  | 'BAD_PROJECT'
  | 'PATH_ESCAPE'
  | 'UNSUPPORTED'
  | 'CANCELLED'
  | 'JOB_FAILED'
  | 'WORKER_CRASHED'
  | 'BACKEND_UNAVAILABLE'
  | 'NOT_FITTED'
  | 'NUMERIC'
  | 'INTERNAL';

export class NmlabError extends Error {
  override readonly name = 'NmlabError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SerializedError {
  name: string;
  code: ErrorCode;
  message: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof NmlabError) return { name: err.name, code: err.code, message: err.message };
  if (err instanceof Error) return { name: err.name, code: 'INTERNAL', message: err.message };
  return { name: 'Error', code: 'INTERNAL', message: String(err) };
}

export function deserializeError(e: SerializedError): NmlabError {
  return new NmlabError(e.code, e.message);
}
