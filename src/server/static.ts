/**
 * Serves the built renderer (`out/renderer`) with strict headers. Only files inside the
 * renderer folder are ever read: the decoded path is resolved and must stay under the root.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentTypeOf, resolveStaticPath } from '../core/fs/staticPath';

/**
 * The page's Content-Security-Policy: nothing remote, no inline script, no eval. The
 * WebSocket goes to the page's own origin, which CSP3 'self' covers for ws:.
 */
export function contentSecurityPolicy(host: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self' ws://${host}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Headers sent with every response, page or error. */
export function securityHeaders(host: string): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(host),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), usb=(), serial=()',
  };
}

/** Answer a GET/HEAD for a static file; 404 when absent. */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, urlPath: string, headers: Record<string, string>): Promise<void> {
  const file = resolveStaticPath(root, urlPath);
  if (!file) {
    sendText(res, 400, 'Bad path\n', headers);
    return;
  }
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error('not a file');
    size = s.size;
  } catch {
    sendText(res, 404, 'Not found\n', headers);
    return;
  }
  const isIndex = extname(file) === '.html';
  res.writeHead(200, {
    ...headers,
    'Content-Type': contentTypeOf(file),
    'Content-Length': String(size),
    // The page must never be cached (it is the token gate); hashed assets may be, privately.
    'Cache-Control': isIndex ? 'no-store' : 'private, max-age=3600',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(file).pipe(res);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string>): void {
  res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': String(Buffer.byteLength(text)) });
  res.end(text);
}
