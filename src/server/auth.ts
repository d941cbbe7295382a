/**
 * Who may talk to the browser-mode server (DESIGN §7): a caller must present the session's
 * random token (query parameter on first load, then an HttpOnly cookie), come through a
 * Host name the server answers to (which defeats DNS rebinding), and, for the WebSocket, send
 * an Origin equal to the page's own origin (which defeats cross-site pages).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** 32 random bytes, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison so the token cannot be guessed byte by byte from timings. */
export function tokenMatches(expected: string, given: string | undefined | null): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Cookies are shared by every port of a host, so the name carries the port: two servers on
 * one machine then never overwrite each other's session.
 */
export function cookieName(port: number): string {
  return `nmlab_token_${port}`;
}

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export function sessionCookie(port: number, token: string): string {
  return `${cookieName(port)}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Split a Host header into name and port; null when it is malformed. */
export function parseHost(host: string | undefined): { name: string; port: string } | null {
  if (!host) return null;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return null;
  return { name: m[1].toLowerCase(), port: m[2] ?? '' };
}

/**
 * The Host names this server answers to: loopback names always (an SSH tunnel arrives as
 * localhost, possibly on another port), plus the name it was bound to when not loopback.
 * Any port is accepted because a tunnel may forward a different local port.
 */
export function hostAllowed(hostHeader: string | undefined, boundHost: string): boolean {
  const host = parseHost(hostHeader);
  if (!host) return false;
  if (LOOPBACK_NAMES.has(host.name)) return true;
  const bound = boundHost.toLowerCase();
  if (bound === '0.0.0.0' || bound === '::') return false;
  return host.name === bound || host.name === `[${bound}]`;
}

/** True when the request's Origin is exactly the origin the page was served from. */
export function originMatches(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (!origin || !host) return false;
  return origin === `http://${host}`;
}
