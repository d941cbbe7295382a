/**
 * What the Vue app talks to (STYLE.md §5, Netron's Host): one typed API, two transports.
 * Views and stores only see `LabClient`; whether it runs over Electron IPC or the browser-mode
 * WebSocket is decided once at start-up.
 */
import type { AppApi, AppEventName, AppEventPayload } from '../../../shared/contract/shell';

export type Transport = 'ipc' | 'websocket';
export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface LabClient {
  readonly transport: Transport;
  /** Every contract method, typed, with inputs and results validated by the contract. */
  readonly api: AppApi;
  /** Listen to a push event; the payload has been validated against its schema. */
  on<E extends AppEventName>(name: E, cb: (payload: AppEventPayload<E>) => void): () => void;
  /** The link to the backend (always `open` over IPC). */
  readonly state: ConnectionState;
  onStateChange(cb: (state: ConnectionState) => void): () => void;
}
