/**
 * Browser mode (DESIGN §2, §7): serves the built renderer and the lab API over a WebSocket on
 * localhost, for headless machines reached through an SSH tunnel and for end-to-end tests.
 *
 * Access control: a random 32-byte token is required. `GET /?token=…` sets an HttpOnly,
 * SameSite=Strict cookie and redirects to the clean URL; every later request (page, assets,
 * WebSocket) must carry that cookie (or the token as a query parameter). The WebSocket also
 * requires an Origin equal to the page's own origin, and every request a Host name the server
 * answers to.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { cookieName, hostAllowed, newToken, originMatches, readCookie, sessionCookie, tokenMatches } from './auth';
import { securityHeaders, sendText, serveStatic } from './static';
import { attachSocket, browserHandlers, type SocketLimits } from './socket';
import type { LabBackendLike } from './types';

export type { LabBackendLike } from './types';

export interface ServerOptions {
  /** Interface to bind; 127.0.0.1 unless the user asks otherwise. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Folder of the built renderer (with index.html). */
  rendererDir: string;
  backend: LabBackendLike;
  /** Fixed token (tests); a fresh random one otherwise. */
  token?: string;
  /** Per-connection WebSocket limits (tests lower them). */
  socketLimits?: SocketLimits;
  /** One line per connection problem; stderr by default. */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** The URL to open, token included. */
  url: string;
  token: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

/** Largest WebSocket message accepted; requests are small JSON objects. */
const MAX_MESSAGE_BYTES = 1 << 20;

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.write(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${reason.length + 1}\r\n\r\n${reason}\n`);
  socket.destroy();
}

/** Start the server; resolves once it listens. */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? newToken();
  const handlers = browserHandlers(opts.backend);
  let port = 0;

  const authorised = (req: IncomingMessage, url: URL): boolean =>
    tokenMatches(token, readCookie(req, cookieName(port))) || tokenMatches(token, url.searchParams.get('token'));

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const ownHost = `${hostForUrl(host)}:${port}`;
    if (!hostAllowed(req.headers.host, host)) {
      sendText(res, 403, 'Forbidden: unexpected Host header\n', securityHeaders(ownHost));
      return;
    }
    // The Host the browser used (a tunnel may map another port) is where its WebSocket goes.
    const headers = securityHeaders(req.headers.host ?? ownHost);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, 'Method not allowed\n', { ...headers, Allow: 'GET, HEAD' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null) {
      if (!tokenMatches(token, queryToken)) {
        sendText(res, 403, 'Forbidden: wrong token. Use the URL printed by `nmlab serve`.\n', headers);
        return;
      }
      // Trade the token in the URL for a cookie and drop it from the address bar and history.
      url.searchParams.delete('token');
      // Only ever a path on this server: collapse leading slashes so it cannot read as //other-host.
      const location = '/' + url.pathname.replace(/^\/+/, '') + url.search;
      res.writeHead(303, { ...headers, 'Set-Cookie': sessionCookie(port, token), Location: location, 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    if (!authorised(req, url)) {
      sendText(res, 401, 'Unauthorized: open the URL with ?token=… that `nmlab serve` printed.\n', headers);
      return;
    }
    serveStatic(req, res, opts.rendererDir, url.pathname, headers).catch((err: unknown) => {
      if (!res.headersSent) sendText(res, 500, `Internal error: ${err instanceof Error ? err.message : String(err)}\n`, headers);
      else res.destroy();
    });
  };

  const log = opts.log ?? ((line: string) => process.stderr.write(`nmlab serve: ${line}\n`));
  const server = createServer(onRequest);
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  // A reset connection must not end the process: 'error' on a socket nobody listens to throws.
  server.on('connection', (socket) => socket.on('error', () => undefined));
  wss.on('error', (err) => log(`WebSocket server: ${err.message}`));
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/api') return refuseUpgrade(socket, 404, 'Not Found');
    if (!hostAllowed(req.headers.host, host)) return refuseUpgrade(socket, 403, 'Forbidden');
    if (!authorised(req, url)) return refuseUpgrade(socket, 401, 'Unauthorized');
    if (!originMatches(req)) return refuseUpgrade(socket, 403, 'Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => {
      attachSocket(ws, opts.backend, handlers, { limits: opts.socketLimits, log, peer: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}` });
    });
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://${hostForUrl(host)}:${port}/?token=${token}`,
    token,
    port,
    host,
    close: () =>
      new Promise<void>((resolveClose) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}
