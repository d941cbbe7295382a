/**
 * Picks the transport once: inside the desktop app the preload has set `window.nmlab`;
 * anywhere else the page was served by `nmlab serve` and talks WebSocket.
 */
import { createIpcClient } from './ipc';
import { createWebSocketClient } from './websocket';
import type { LabClient } from './types';

export type { LabClient, ConnectionState, Transport } from './types';
export { errorMessage } from './envelope';

let client: LabClient | null = null;

export function useLabClient(): LabClient {
  if (!client) client = window.nmlab ? createIpcClient(window.nmlab) : createWebSocketClient();
  return client;
}
