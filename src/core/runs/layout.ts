/**
 * The run layout (DESIGN §5), owned here for every writer and reader of `<project>/runs/<id>/`:
 *
 *   config.json    what the run is (kind, parameters, inputs); written once at creation
 *   status.json    running → succeeded | failed | cancelled | interrupted ({@link RunStatusRecord})
 *   metrics.jsonl  one `{series, step, values}` point per line, appended as the run goes
 *   result.json    the outcome, written before the status becomes `succeeded`
 *   log.txt        timestamped lines
 *
 * This module holds the pure rules (names, schemas, run ids, when a `running` record is dead);
 * ./files.ts the file primitives built on them; ./store.ts the Run class and the run views.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { RunStatus } from '../../shared/contract/experiments';

export const RUNS_FOLDER = 'runs';
export const CONFIG_FILE = 'config.json';
export const STATUS_FILE = 'status.json';
export const METRICS_FILE = 'metrics.jsonl';
export const RESULT_FILE = 'result.json';
export const LOG_FILE = 'log.txt';

/** Heartbeat period of a run owned by a long-lived process (see `Run` in ./store.ts). */
export const HEARTBEAT_MS = 30_000;
/** A running record from another host whose heartbeat is older than this is taken as dead. */
export const STALE_MS = 5 * 60_000;

/**
 * The one run-id rule. Runs made by {@link newRunId} (`YYYYMMDD-HHMMSS-mmm-<6 hex>`) and by
 * experiments (`<experiment>.j0001.a1`) both match it, so both live in the same `runs/` folder.
 */
export const RunId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$/, 'a run id is letters, digits, ".", "-" and "_"');

/** A new run id that sorts by creation time: UTC to the millisecond, plus 24 random bits. */
export function newRunId(now = new Date()): string {
  const iso = now.toISOString(); // 2026-11-27T20:07:03.123Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}-${iso.slice(20, 23)}`;
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export type RunState = RunStatus;

/** `status.json`: where the run stands. Every writer fills every field (see `nextRunStatus` in ./files.ts). */
export const RunStatusRecord = z.object({
  status: RunStatus,
  /** Last write; refreshed every {@link HEARTBEAT_MS} while a `Run` (./store.ts) is running. */
  updatedAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  /** The process running it; null until a worker takes it (experiment runs are created first). */
  pid: z.number().int().nullable(),
  /** The machine of `pid`; optional so that records written before it existed still read. */
  host: z.string().optional(),
  error: z.string().nullable(),
});
export type RunStatusRecord = z.infer<typeof RunStatusRecord>;

/** Whether a process with this id exists on this machine. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a `running` record belongs to a process that is gone: on this host its pid no longer
 * exists (a record without a pid cannot tell, so it is taken as alive); on another host its
 * heartbeat is older than {@link STALE_MS}. A record without a host is taken as this host's.
 */
export function isDead(rec: RunStatusRecord, now = Date.now()): boolean {
  if (rec.status !== 'running') return false;
  if ((rec.host ?? hostname()) === hostname()) return rec.pid !== null && !processAlive(rec.pid);
  return now - Date.parse(rec.updatedAt) > STALE_MS;
}
