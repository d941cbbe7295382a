/**
 * The desktop app's own scheme (issue 12 item 6): the built renderer is served from
 * `app://nmlab/…` instead of `file://`, so the page has a real origin (CSP 'self' means the
 * app's files only, not every file on disk), and only files inside the renderer folder can be
 * loaded. The scheme is registered as privileged (standard, secure) before `ready`; every
 * response carries the app's CSP and nosniff.
 */
import { protocol } from 'electron';
import { readFile } from 'node:fs/promises';
import { contentTypeOf, resolveStaticPath } from '../core/fs/staticPath';
import { CONTENT_SECURITY_POLICY } from './security';

export const APP_SCHEME = 'app';
export const APP_HOST = 'nmlab';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
/** What the window loads in production. */
export const APP_INDEX_URL = `${APP_ORIGIN}/index.html`;

/** Must run before `app.whenReady()` (Electron only accepts privileges then). */
export function registerAppSchemePrivileges(): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
}

/** The renderer file an `app://` URL names, or null for another host or a path that escapes. */
export function appFileFor(rawUrl: string, rendererDir: string): string | null {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return null;
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST || url.username || url.password || url.port) return null;
  // URL parsing already collapsed `.`/`..`; resolveStaticPath rejects what survives (encoded ones).
  return resolveStaticPath(rendererDir, url.pathname);
}

const headers = (extra: Record<string, string>): Record<string, string> => ({
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  ...extra,
});

/** Answer one `app://` request from `rendererDir`: 404 outside it or when absent. */
export async function appResponse(rawUrl: string, rendererDir: string): Promise<Response> {
  const file = appFileFor(rawUrl, rendererDir);
  if (!file) return new Response('Not found\n', { status: 404, headers: headers({ 'Content-Type': 'text/plain; charset=utf-8' }) });
  try {
    const body = await readFile(file);
    return new Response(new Uint8Array(body), { status: 200, headers: headers({ 'Content-Type': contentTypeOf(file) }) });
  } catch {
    return new Response('Not found\n', { status: 404, headers: headers({ 'Content-Type': 'text/plain; charset=utf-8' }) });
  }
}

/** Serve the scheme (after `ready`). */
export function serveAppScheme(rendererDir: string): void {
  protocol.handle(APP_SCHEME, (req) => appResponse(req.url, rendererDir));
}
