/**
 * The WebSocket protocol of browser mode. A client sends `{id, channel, payload}`; the server
 * validates and dispatches it through the same contract as every other transport and answers
 * `{id, ok: true, result}` or `{id, ok: false, error}`. Backend events are pushed as
 * `{event: 'nmlab:event.<name>', payload}`.
 *
 * One client can never bring the server down (issue 12 item 3): protocol errors that `ws`
 * detects (oversize message 1009, invalid UTF-8 1007, unmasked frame / reserved opcode / RSV
 * bits 1002) close only that connection, with one log line; a client over its request rate
 * or with too many requests in flight is closed with 1008; one that stops reading while the
 * server's send buffer grows is dropped.
 */
import type { WebSocket } from 'ws';
import { dispatch } from '../shared/contract/define';
import { appContract, appEventChannel, type AppContract } from '../shared/contract/shell';
import type { HandlersOf } from '../shared/contract/define';
import { NmlabError, serializeError } from '../shared/errors';
import type { LabBackendLike } from './types';

interface Request {
  id: string | number;
  channel: string;
  payload: unknown;
}

function parseRequest(raw: string): Request {
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    throw new NmlabError('BAD_REQUEST', 'WebSocket message is not JSON; send {"id", "channel", "payload"}');
  }
  if (typeof msg !== 'object' || msg === null) throw new NmlabError('BAD_REQUEST', 'WebSocket message must be an object {"id", "channel", "payload"}');
  const { id, channel, payload } = msg as Record<string, unknown>;
  if ((typeof id !== 'string' && typeof id !== 'number') || typeof channel !== 'string') {
    throw new NmlabError('BAD_REQUEST', 'WebSocket message needs a string or number "id" and a string "channel"');
  }
  return { id, channel, payload };
}

/** The handlers browser mode serves: the lab's own, plus shell services it cannot offer. */
export function browserHandlers(backend: LabBackendLike): HandlersOf<AppContract> {
  const unsupported = (what: string) => async (): Promise<never> => {
    throw new NmlabError('UNSUPPORTED', `${what} is only available in the desktop app; in browser mode type the folder path instead`);
  };
  return { ...backend.handlers, dialog: { pickFolder: unsupported('the folder dialog'), pickFile: unsupported('the file dialog') } };
}

/** Limits of one connection; see {@link DEFAULT_SOCKET_LIMITS}. */
export interface SocketLimits {
  /** Sustained requests per second (token bucket refill). */
  ratePerSecond: number;
  /** Requests allowed in a burst (bucket size). */
  burst: number;
  /** Requests being answered at once. */
  maxInFlight: number;
  /** Bytes queued for a client that does not read before it is dropped. */
  maxBufferedBytes: number;
}

/** Far above what the app sends (a page load makes a few dozen requests). */
export const DEFAULT_SOCKET_LIMITS: SocketLimits = { ratePerSecond: 100, burst: 200, maxInFlight: 64, maxBufferedBytes: 16 << 20 };

/** Close codes (RFC 6455 §7.4.1) the server uses itself. */
export const CLOSE_POLICY = 1008;

export interface AttachOptions {
  limits?: SocketLimits;
  /** One line per connection problem (no stack). */
  log?: (line: string) => void;
  /** Names the client in log lines (its address). */
  peer?: string;
}

/** Wire one accepted socket to the backend; returns a function that detaches it. */
export function attachSocket(ws: WebSocket, backend: LabBackendLike, handlers: HandlersOf<AppContract>, opts: AttachOptions = {}): () => void {
  const limits = opts.limits ?? DEFAULT_SOCKET_LIMITS;
  const log = opts.log ?? (() => undefined);
  const peer = opts.peer ?? 'client';
  let logged = false;
  /** Log once per connection: a flood of bad frames must not become a flood of lines. */
  const logOnce = (line: string): void => {
    if (logged) return;
    logged = true;
    log(`WebSocket ${peer}: ${line}`);
  };
  const closeFor = (code: number, reason: string): void => {
    logOnce(`closed (${code}): ${reason}`);
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason.slice(0, 120));
  };
  // `ws` has already started the close handshake with the right code (1002, 1007, 1009) when
  // it emits 'error'; without this listener the error would be thrown and end the process.
  ws.on('error', (err: Error & { code?: string; [k: symbol]: unknown }) => {
    const closeCode = Object.getOwnPropertySymbols(err)
      .map((sym) => err[sym])
      .find((v): v is number => typeof v === 'number');
    logOnce(`closed${closeCode ? ` (${closeCode})` : ''}: ${err.message}${err.code ? ` [${err.code}]` : ''}`);
    if (ws.readyState === ws.OPEN) ws.close(closeCode ?? 1002);
  });
  const send = (msg: unknown): void => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > limits.maxBufferedBytes) {
      logOnce(`dropped: it stopped reading and ${ws.bufferedAmount} bytes are waiting`);
      ws.terminate();
      return;
    }
    ws.send(JSON.stringify(msg));
  };
  let tokens = limits.burst;
  let refilledAt = Date.now();
  let inFlight = 0;
  /** Token bucket: true when this request may go ahead. */
  const admit = (): boolean => {
    const now = Date.now();
    tokens = Math.min(limits.burst, tokens + ((now - refilledAt) / 1000) * limits.ratePerSecond);
    refilledAt = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
  const stopJob = backend.onEvent('job', (payload) => send({ event: appEventChannel('job'), payload }));
  const stopExperiment = backend.onEvent('experiment', (payload) => send({ event: appEventChannel('experiment'), payload }));
  const unsubscribe = (): void => {
    stopJob();
    stopExperiment();
  };

  ws.on('message', (data, isBinary) => {
    if (!admit()) {
      closeFor(CLOSE_POLICY, `more than ${limits.ratePerSecond} requests per second (burst ${limits.burst})`);
      return;
    }
    if (inFlight >= limits.maxInFlight) {
      closeFor(CLOSE_POLICY, `more than ${limits.maxInFlight} requests waiting for an answer`);
      return;
    }
    if (isBinary) {
      send({ id: null, ok: false, error: serializeError(new NmlabError('BAD_REQUEST', 'binary WebSocket messages are not part of the protocol')) });
      return;
    }
    let req: Request;
    try {
      req = parseRequest(data.toString());
    } catch (err) {
      send({ id: null, ok: false, error: serializeError(err) });
      return;
    }
    inFlight++;
    dispatch(appContract, handlers, req.channel, req.payload)
      .then(
        (result) => send({ id: req.id, ok: true, result }),
        (err: unknown) => send({ id: req.id, ok: false, error: serializeError(err) }),
      )
      .catch((err: unknown) => logOnce(`could not answer request ${String(req.id)}: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => inFlight--);
  });
  const detach = (): void => unsubscribe();
  ws.on('close', detach);
  return detach;
}
