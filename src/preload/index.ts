/**
 * The sandboxed preload: exposes one narrow `window.nmlab` object (STYLE.md §1) and nothing
 * else of Electron. `invoke` only forwards channels the contract defines and `on` only
 * listens to the contract's event channels; the main process validates every payload again.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { listChannels } from '../shared/contract/define';
import { appContract, appEventChannel, appEvents, type AppEventName, type NmlabBridge } from '../shared/contract/shell';

const channels = new Set(listChannels(appContract));

function isEventName(name: unknown): name is AppEventName {
  return typeof name === 'string' && Object.hasOwn(appEvents, name);
}

const bridge: NmlabBridge = {
  invoke(channel, payload) {
    if (typeof channel !== 'string' || !channels.has(channel)) {
      return Promise.reject(new Error(`nmlab: "${String(channel)}" is not an API channel`));
    }
    return ipcRenderer.invoke(channel, payload);
  },
  on(eventName, cb) {
    if (!isEventName(eventName) || typeof cb !== 'function') {
      throw new Error(`nmlab: "${String(eventName)}" is not an event name`);
    }
    const channel = appEventChannel(eventName);
    // Never hand the IpcRendererEvent (which carries `sender`) to the page.
    const listener = (_event: IpcRendererEvent, payload: unknown): void => cb(payload);
    ipcRenderer.on(channel, listener);
    return () => {
      ipcRenderer.removeListener(channel, listener);
    };
  },
};

contextBridge.exposeInMainWorld('nmlab', bridge);
