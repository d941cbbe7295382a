/**
 * The messages between the job runner and a worker process (STYLE.md convention 6). Both
 * directions are plain JSON-cloneable objects, so they travel unchanged over
 * `child_process.fork` IPC and Electron's `utilityProcess` port.
 */
import type { JobSpec, Progress } from '../../shared/contract/jobs';
import type { SerializedError } from '../../shared/errors';

/** Parent → worker. The worker sends `ready` first; only then does the parent send `start`. */
export type ParentMessage =
  /**
   * `threads`: the cores this job may use, where the runner shares the machine among jobs
   * running at once; the worker's onnxruntime sessions take it unless NMLAB_ORT_THREADS is set.
   */
  | { type: 'start'; jobId: string; spec: JobSpec; threads?: number }
  | { type: 'cancel' };

/** Worker → parent. Exactly one of `done` / `error` ends a job; exiting without one is a crash. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  /** `at`: the worker's clock (ms) when the progress was made, so the rate does not depend on delivery timing. */
  | { type: 'progress'; progress: Omit<Progress, 'etaSeconds'>; at: number }
  | { type: 'metric'; name: string; step: number; values: Record<string, number> }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'done'; result: unknown }
  | { type: 'error'; error: SerializedError };

const WORKER_TYPES = new Set(['ready', 'progress', 'metric', 'log', 'done', 'error']);

/** Cheap structural check of a message from a worker (the worker is our code, but may be broken). */
export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && WORKER_TYPES.has((m as { type?: unknown }).type as string);
}

export function isParentMessage(m: unknown): m is ParentMessage {
  if (typeof m !== 'object' || m === null) return false;
  const type = (m as { type?: unknown }).type;
  return type === 'start' || type === 'cancel';
}
