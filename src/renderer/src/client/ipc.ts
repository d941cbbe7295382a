/** The desktop transport: `window.nmlab` from the sandboxed preload, over Electron IPC. */
import { makeClient } from '../../../shared/contract/define';
import { appContract, type AppEventName } from '../../../shared/contract/shell';
import type { NmlabBridge } from '../../../shared/contract/shell';
import { parseEvent, unwrap } from './envelope';
import type { LabClient } from './types';

export function createIpcClient(bridge: NmlabBridge): LabClient {
  return {
    transport: 'ipc',
    api: makeClient(appContract, async (channel, payload) => unwrap(await bridge.invoke(channel, payload), channel)),
    on(name: AppEventName, cb) {
      return bridge.on(name, (payload) => {
        const event = parseEvent(name, payload);
        if (event !== null) (cb as (p: typeof event) => void)(event);
      });
    },
    state: 'open',
    onStateChange: () => () => undefined,
  };
}
