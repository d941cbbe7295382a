/**
 * The Electron main process's IPC wiring and URL checks, with `electron` replaced by a stand-in
 * (no Electron binary is needed): every contract channel is registered, a request from a
 * foreign or nested frame is refused, a valid one is dispatched through the contract, and
 * errors keep their code.
 */
import { describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const handlers = new Map<string, (event: unknown, payload: unknown) => Promise<unknown>>();
const schemes: Array<{ scheme: string; privileges: Record<string, boolean> }> = [];
const protocolHandlers = new Map<string, (req: { url: string }) => Promise<Response>>();
vi.mock('electron', () => ({
  ipcMain: {
    handle: (channel: string, fn: (event: unknown, payload: unknown) => Promise<unknown>) => handlers.set(channel, fn),
    removeHandler: (channel: string) => handlers.delete(channel),
  },
  protocol: {
    registerSchemesAsPrivileged: (list: Array<{ scheme: string; privileges: Record<string, boolean> }>) => schemes.push(...list),
    handle: (scheme: string, fn: (req: { url: string }) => Promise<Response>) => protocolHandlers.set(scheme, fn),
  },
  Menu: { buildFromTemplate: (t: unknown) => t },
}));

const { registerIpc } = await import('../../src/main/ipc');
const { makeAppUrlCheck } = await import('../../src/main/appUrl');
const { appContract } = await import('../../src/shared/contract/shell');
const { listChannels } = await import('../../src/shared/contract/define');
const { createLabBackend } = await import('../../src/core/backend');
const { NmlabError } = await import('../../src/shared/errors');

const index = join('/opt', 'nmlab', 'out', 'renderer', 'index.html');
const appUrl = 'app://nmlab/index.html#/projects';
const isApp = makeAppUrlCheck(undefined);

function frameEvent(url: string, nested = false) {
  return { senderFrame: { url, parent: nested ? {} : null } };
}

describe('makeAppUrlCheck', () => {
  it('accepts only app://nmlab/index.html (any hash), not other files, hosts or schemes, and never file://', () => {
    expect(isApp(appUrl)).toBe(true);
    expect(isApp('app://nmlab/')).toBe(true);
    expect(isApp('app://nmlab/assets/../index.html')).toBe(true);
    expect(isApp('app://nmlab/other.html')).toBe(false);
    expect(isApp('app://evil/index.html')).toBe(false);
    expect(isApp('app://user:pw@nmlab/index.html')).toBe(false);
    expect(isApp(pathToFileURL(index).href)).toBe(false);
    expect(isApp('https://example.com/')).toBe(false);
    expect(isApp('not a url')).toBe(false);
  });

  it('in dev, accepts the dev server origin only', () => {
    const dev = makeAppUrlCheck('http://localhost:5173/');
    expect(dev('http://localhost:5173/#/environment')).toBe(true);
    expect(dev('http://localhost:5174/')).toBe(false);
    expect(dev(appUrl)).toBe(false);
  });
});

describe('registerIpc', () => {
  it('registers every channel, checks the sender, validates and dispatches', async () => {
    const backend = createLabBackend({ home: join('/tmp', `nmlab-ipc-${process.pid}`) });
    const pickFolder = vi.fn(async () => ({ path: '/data/picked' }));
    const unregister = registerIpc(appContract, { ...backend.handlers, dialog: { pickFolder, pickFile: async () => ({ path: null }) } }, isApp);
    try {
      expect([...handlers.keys()].sort()).toEqual(listChannels(appContract).sort());

      const ok = await handlers.get('nmlab:dialog.pickFolder')!(frameEvent(appUrl), { title: 'x' });
      expect(ok).toEqual({ ok: true, result: { path: '/data/picked' } });
      // Defaults from the schema were applied before the handler ran.
      expect(pickFolder).toHaveBeenCalledWith({ title: 'x', create: false });

      const foreign = await handlers.get('nmlab:dialog.pickFolder')!(frameEvent('https://example.com/'), {});
      expect(foreign).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      const nested = await handlers.get('nmlab:dialog.pickFolder')!(frameEvent(appUrl, true), {});
      expect(nested).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      const noFrame = await handlers.get('nmlab:dialog.pickFolder')!({ senderFrame: null }, {});
      expect(noFrame).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect(pickFolder).toHaveBeenCalledTimes(1);

      const invalid = await handlers.get('nmlab:projects.create')!(frameEvent(appUrl), { dir: 42 });
      expect(invalid).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });

      pickFolder.mockRejectedValueOnce(new NmlabError('UNSUPPORTED', 'no dialogs today'));
      const failed = await handlers.get('nmlab:dialog.pickFolder')!(frameEvent(appUrl), {});
      expect(failed).toEqual({ ok: false, error: { name: 'NmlabError', code: 'UNSUPPORTED', message: 'no dialogs today' } });
    } finally {
      unregister();
      await backend.dispose();
    }
    expect(handlers.size).toBe(0);
  });
});
