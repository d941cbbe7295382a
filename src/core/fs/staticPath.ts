/**
 * Mapping a URL path onto a file of the built renderer, shared by browser mode's HTTP server
 * (src/server/static.ts) and the desktop app's `app://` scheme (src/main/appProtocol.ts), so
 * both refuse the same escapes and send the same content types.
 */
import { extname, join, relative, resolve, sep, isAbsolute } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** The Content-Type of a renderer file, by extension. */
export function contentTypeOf(file: string): string {
  return TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Map a URL path onto a file under `root`, or null when it is malformed or escapes the root
 * (`..`, encoded separators, NUL bytes, absolute paths).
 */
export function resolveStaticPath(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const rel = decoded.replace(/^\/+/, '') || 'index.html';
  if (isAbsolute(rel)) return null;
  const base = resolve(root);
  const file = resolve(join(base, rel));
  const within = relative(base, file);
  if (within === '' || within.startsWith('..') || isAbsolute(within) || within.split(sep).includes('..')) return null;
  return file;
}
