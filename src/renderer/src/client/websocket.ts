/**
 * The browser-mode transport: the API over a WebSocket to `nmlab serve`. The session token
 * travels in the HttpOnly cookie the server set when the page was first opened with
 * `?token=…`, so this code never sees it. Requests are `{id, channel, payload}`; answers are
 * matched by id; pushed events arrive as `{event, payload}`. A dropped connection rejects
 * the calls in flight and is retried with backoff.
 */
import { makeClient } from '../../../shared/contract/define';
import { appContract, appEventChannel, type AppEventName } from '../../../shared/contract/shell';
import { NmlabError } from '../../../shared/errors';
import { parseEvent, unwrap } from './envelope';
import type { ConnectionState, LabClient } from './types';

interface Pending {
  channel: string;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** How long a call waits for the socket to (re)open before failing. */
const OPEN_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 5_000;

export function defaultSocketUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api`;
}

export function createWebSocketClient(url: string = defaultSocketUrl()): LabClient {
  let socket: WebSocket | null = null;
  let state: ConnectionState = 'connecting';
  let nextId = 1;
  let backoff = 250;
  const pending = new Map<number, Pending>();
  const stateListeners = new Set<(s: ConnectionState) => void>();
  const eventListeners = new Map<string, Set<(payload: unknown) => void>>();
  const openWaiters = new Set<() => void>();

  const setState = (s: ConnectionState): void => {
    if (s === state) return;
    state = s;
    for (const cb of stateListeners) cb(s);
  };

  const connect = (): void => {
    setState('connecting');
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      backoff = 250;
      setState('open');
      for (const w of openWaiters) w();
      openWaiters.clear();
    };
    ws.onmessage = (e: MessageEvent) => {
      let msg: unknown;
      try {
        msg = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (typeof msg !== 'object' || msg === null) return;
      const m = msg as { id?: unknown; event?: unknown; payload?: unknown };
      if (typeof m.event === 'string') {
        for (const cb of eventListeners.get(m.event) ?? []) cb(m.payload);
        return;
      }
      if (typeof m.id !== 'number') return;
      const call = pending.get(m.id);
      if (!call) return;
      pending.delete(m.id);
      try {
        call.resolve(unwrap(msg, call.channel));
      } catch (err) {
        call.reject(err);
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      setState('closed');
      for (const [id, call] of pending) {
        pending.delete(id);
        call.reject(new NmlabError('BACKEND_UNAVAILABLE', `lost the connection to the NMLab server during ${call.channel}; is \`nmlab serve\` still running?`));
      }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };
  };

  const whenOpen = (): Promise<void> => {
    if (state === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        openWaiters.delete(done);
        reject(
          new NmlabError(
            'BACKEND_UNAVAILABLE',
            'cannot reach the NMLab server. If it was restarted, open the new URL it printed (the token changes with every start).',
          ),
        );
      }, OPEN_TIMEOUT_MS);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      openWaiters.add(done);
    });
  };

  const invoke = async (channel: string, payload: unknown): Promise<unknown> => {
    await whenOpen();
    const ws = socket;
    if (!ws) throw new NmlabError('BACKEND_UNAVAILABLE', `not connected to the NMLab server (${channel})`);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { channel, resolve, reject });
      ws.send(JSON.stringify({ id, channel, payload }));
    });
  };

  connect();

  return {
    transport: 'websocket',
    api: makeClient(appContract, invoke),
    on(name: AppEventName, cb) {
      const channel = appEventChannel(name);
      const listener = (payload: unknown): void => {
        const event = parseEvent(name, payload);
        if (event !== null) (cb as (p: typeof event) => void)(event);
      };
      let set = eventListeners.get(channel);
      if (!set) eventListeners.set(channel, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
      };
    },
    get state() {
      return state;
    },
    onStateChange(cb) {
      stateListeners.add(cb);
      return () => {
        stateListeners.delete(cb);
      };
    },
  };
}
