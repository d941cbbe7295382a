import type { EventName, EventPayload, LabHandlers } from '../shared/contract/index';

/**
 * What the server needs from the lab backend (`createLabBackend` in core): its handlers and a
 * way to listen to its events. Kept structural so the server does not depend on how the
 * backend is built.
 */
export interface LabBackendLike {
  handlers: LabHandlers;
  onEvent<E extends EventName>(name: E, cb: (payload: EventPayload<E>) => void): () => void;
}
