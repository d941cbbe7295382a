/**
 * File primitives of the run layout (./layout.ts): the only code that writes `runs/<id>/`.
 * Used by the Run class and the run views (./store.ts), the queue and the job kinds.
 *
 * Crash rules: JSON files are replaced atomically (src/core/fs/atomic.ts), so each one is always
 * whole; the only file a kill can tear is the last line of `metrics.jsonl` (an append cut
 * short), which readers skip. A run is finished when `status.json` says `succeeded`, which
 * writers set only after `result.json` is complete.
 */
import { appendFile, mkdir, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { MetricPoint } from '../../shared/contract/experiments';
import { NmlabError } from '../../shared/errors';
import { removeTempsOf, writeJsonAtomic } from '../fs/atomic';
import { readJsonChecked } from '../fs/json';
import { listFolder } from '../fs/list';
import { resolveInside } from '../projects/resolveInside';
import { fsError } from '../fs/errors';
import { CONFIG_FILE, LOG_FILE, RESULT_FILE, RUNS_FOLDER, RunId, RunStatusRecord, STATUS_FILE, isDead, processAlive, type RunState } from './layout';

/** Absolute folder of run `id`, checked to be a run id and to stay inside the project. */
export async function runDir(projectDir: string, id: string): Promise<string> {
  const parsed = RunId.safeParse(id);
  if (!parsed.success) throw new NmlabError('BAD_REQUEST', `"${id}" is not a run id: ${parsed.error.issues[0]?.message}`);
  return resolveInside(projectDir, join(RUNS_FOLDER, id));
}

/** A JSON file of a run folder checked against `schema`; null when it does not exist. */
export const readRunJson = readJsonChecked;

/** Make `runs/<config.id>/` and write its `config.json` (once). Returns the folder. */
export async function createRunFolder(projectDir: string, config: { id: string; kind: string; createdAt: string }): Promise<string> {
  const dir = await runDir(projectDir, config.id);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw fsError(err, 'create', dir);
  }
  try {
    await writeJsonAtomic(join(dir, CONFIG_FILE), config);
  } catch (err) {
    // A full disk must not leave an empty run folder behind (issue 12 item 4).
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return dir;
}

/**
 * The status record that follows `prev` (null: the first one) when the run moves to `status`.
 * `endedAt` is set for terminal statuses; `pid` and `error` carry over unless patched (the
 * error clears when running again or succeeding); `host` is always this machine.
 */
export function nextRunStatus(prev: RunStatusRecord | null, status: RunState, patch: { pid?: number | null; error?: string | null } = {}, now = new Date().toISOString()): RunStatusRecord {
  return {
    status,
    updatedAt: now,
    startedAt: prev?.startedAt ?? now,
    endedAt: status === 'running' ? null : now,
    pid: patch.pid !== undefined ? patch.pid : (prev?.pid ?? null),
    host: hostname(),
    error: patch.error !== undefined ? patch.error : status === 'running' || status === 'succeeded' ? null : (prev?.error ?? null),
  };
}

/** Replace `status.json` of the run in `dir` atomically. */
export function writeStatusIn(dir: string, rec: RunStatusRecord): Promise<void> {
  return writeJsonAtomic(join(dir, STATUS_FILE), rec);
}

export async function readRunStatus(projectDir: string, id: string): Promise<RunStatusRecord | null> {
  return readRunJson(join(await runDir(projectDir, id), STATUS_FILE), RunStatusRecord, 'run status');
}

/** Update the status from what is on disk; `endedAt` is set for terminal statuses. */
export async function setRunStatus(projectDir: string, id: string, status: RunState, patch: { pid?: number | null; error?: string | null } = {}): Promise<void> {
  const dir = await runDir(projectDir, id);
  await writeStatusIn(dir, nextRunStatus(await readRunStatus(projectDir, id), status, patch));
}

/**
 * The status a reader shows: as stored, except that a `running` run whose process is gone
 * ({@link isDead}) reads `interrupted` (nothing is written), and a folder without a status
 * (created and killed in the same instant) reads `interrupted` too.
 */
export function effectiveStatus(rec: RunStatusRecord | null, now = Date.now()): RunState {
  return !rec || isDead(rec, now) ? 'interrupted' : rec.status;
}

/** Append a timestamped line to `log.txt` of the run in `dir`. */
export function appendLogIn(dir: string, line: string): Promise<void> {
  return appendFile(join(dir, LOG_FILE), `${new Date().toISOString()} ${line}\n`);
}

export async function appendRunLog(projectDir: string, id: string, line: string): Promise<void> {
  await appendLogIn(await runDir(projectDir, id), line);
}

/**
 * Mark a run that was `running` as `interrupted` (its process is gone); a run that finished
 * meanwhile keeps its status. Returns the status the run ends up with (null: no such run).
 */
export async function markInterrupted(projectDir: string, id: string, reason: string): Promise<RunState | null> {
  const st = await readRunStatus(projectDir, id).catch(() => null);
  if (!st) return null;
  if (st.status !== 'running') return st.status;
  // A process killed while it wrote (status, metrics, result) leaves its temporary file; once
  // that process is gone no rename of it can come, so its leftovers go.
  if (st.pid !== null && (st.host ?? hostname()) === hostname() && !processAlive(st.pid)) await removeTempsOf(await runDir(projectDir, id), st.pid);
  await setRunStatus(projectDir, id, 'interrupted', { error: reason });
  await appendRunLog(projectDir, id, `interrupted: ${reason}`);
  return 'interrupted';
}

/** Write `result.json` of the run in `dir` (before its status becomes `succeeded`). */
export function writeResultIn(dir: string, result: unknown): Promise<void> {
  return writeJsonAtomic(join(dir, RESULT_FILE), result);
}

/**
 * Appends metric points to `metrics.jsonl` in batches (one write per flush), so a run with
 * thousands of steps does not do thousands of writes. A batch is written after `intervalMs`
 * (null: only on demand) or once `maxBatch` points wait; `flush()` before the run ends.
 */
export class MetricsWriter {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly intervalMs: number | null = 250,
    private readonly maxBatch = Infinity,
  ) {}

  push(point: MetricPoint): void {
    this.buffer.push(JSON.stringify(point));
    if (this.buffer.length >= this.maxBatch) void this.flush();
    else if (this.intervalMs !== null) this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Write what is buffered; resolves when it is on disk. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.buffer.length > 0) {
      const text = this.buffer.join('\n') + '\n';
      this.buffer = [];
      this.chain = this.chain.then(() => appendFile(this.file, text));
    }
    return this.chain;
  }
}

/** Ids of the run folders of a project (names that are run ids and folders), sorted by name. */
export async function listRunIds(projectDir: string): Promise<string[]> {
  const root = await resolveInside(projectDir, RUNS_FOLDER);
  const names = await listFolder(root);
  const out: string[] = [];
  for (const name of names.sort()) {
    if (!RunId.safeParse(name).success) continue;
    try {
      if ((await stat(join(root, name))).isDirectory()) out.push(name);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}
