/**
 * The WebSocket protocol of browser mode. A client sends `{id, channel, payload}`; the server
 * validates and dispatches it through the same contract as every other transport and answers
 * `{id, ok: true, result}` or `{id, ok: false, error}`. Backend events are pushed as
 * `{event: 'nmlab:event.<name>', payload}`.
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

/** Wire one accepted socket to the backend; returns a function that detaches it. */
export function attachSocket(ws: WebSocket, backend: LabBackendLike, handlers: HandlersOf<AppContract>): () => void {
  const send = (msg: unknown): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const stopJob = backend.onEvent('job', (payload) => send({ event: appEventChannel('job'), payload }));
  const stopExperiment = backend.onEvent('experiment', (payload) => send({ event: appEventChannel('experiment'), payload }));
  const unsubscribe = (): void => {
    stopJob();
    stopExperiment();
  };

  ws.on('message', (data, isBinary) => {
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
    dispatch(appContract, handlers, req.channel, req.payload).then(
      (result) => send({ id: req.id, ok: true, result }),
      (err: unknown) => send({ id: req.id, ok: false, error: serializeError(err) }),
    );
  });
  const detach = (): void => unsubscribe();
  ws.on('close', detach);
  return detach;
}
