/**
 * Electron IPC for the contract (STYLE.md §2, convention 3): one `ipcMain.handle` per channel,
 * each checking that the sender is the app's own top-level page before the payload is
 * validated and dispatched. Answers use the same `{ok, result | error}` envelope as the
 * WebSocket protocol so errors keep their `code`.
 */
import { ipcMain, type IpcMainInvokeEvent } from 'electron';
import { dispatch, listChannels, type HandlersOf } from '../shared/contract/define';
import type { AppContract } from '../shared/contract/shell';
import { NmlabError, serializeError } from '../shared/errors';

export type SenderCheck = (frameUrl: string) => boolean;

/** Register every channel of `contract`; returns a function that removes the handlers. */
export function registerIpc(contract: AppContract, handlers: HandlersOf<AppContract>, isTrusted: SenderCheck): () => void {
  const channels = listChannels(contract);
  for (const channel of channels) {
    ipcMain.handle(channel, async (event: IpcMainInvokeEvent, payload: unknown) => {
      try {
        const frame = event.senderFrame;
        if (!frame || frame.parent !== null || !isTrusted(frame.url)) {
          throw new NmlabError('BAD_REQUEST', `refused ${channel}: the request did not come from NMLab's own page`);
        }
        return { ok: true, result: await dispatch(contract, handlers, channel, payload) };
      } catch (err) {
        return { ok: false, error: serializeError(err) };
      }
    });
  }
  return () => {
    for (const channel of channels) ipcMain.removeHandler(channel);
  };
}
