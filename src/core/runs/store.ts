/**
 * The run store (DESIGN §5): one folder per run under `<project>/runs/<id>/`:
 *
 *   config.json    what the run is (kind, parameters, inputs); written once at creation
 *   status.json    running → succeeded | failed | cancelled | interrupted, with pid, host and
 *                  a heartbeat (`updatedAt`, refreshed while running)
 *   metrics.jsonl  one `{series, step, values}` point per line, appended as the run goes
 *   result.json    the outcome, written before the status becomes `succeeded`
 *   log.txt        timestamped lines
 *
 * Crash safety: JSON files are replaced atomically (src/core/fs/atomic.ts), so each is always
 * whole; a kill can only cut the last line of metrics.jsonl, which readers skip. A run whose
 * process died still says `running` on disk; {@link RunStore.list} reports it as `interrupted`
 * when its pid is gone (same host) or its heartbeat is stale (another host), without writing.
 *
 * The layout is the one src/core/experiments/runStore.ts reads, so both see the same runs.
 * Run ids sort by creation time: `YYYYMMDD-HHMMSS-mmm-<6 hex>` (UTC).
 */
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NmlabError } from '../../shared/errors';
import { writeJsonAtomic } from '../fs/atomic';

export type RunState = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

/** `status.json`. */
export interface RunStatusRecord {
  status: RunState;
  /** Heartbeat: refreshed every {@link HEARTBEAT_MS} while running. */
  updatedAt: string;
  startedAt: string;
  endedAt: string | null;
  pid: number;
  host: string;
  error: string | null;
}

/** One line of `metrics.jsonl`. */
export interface RunMetricPoint {
  series: string;
  step: number;
  values: Record<string, number>;
}

/** What {@link RunStore.list} returns per run. */
export interface RunListing {
  id: string;
  kind: string;
  createdAt: string;
  /** The status as stored, except that a `running` run with a dead process reads `interrupted`. */
  status: RunState;
  stored: RunStatusRecord | null;
  config: Record<string, unknown>;
}

export const HEARTBEAT_MS = 30_000;
/** A run from another host whose heartbeat is older than this is taken as dead. */
export const STALE_MS = 5 * 60_000;
const ID_RE = /^[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}$/;

/** A new run id: creation time (UTC, to the millisecond) plus 24 random bits. */
export function newRunId(now = new Date()): string {
  const iso = now.toISOString(); // 2026-11-27T20:07:03.123Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}-${iso.slice(20, 23)}`;
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a `running` record belongs to a process that is gone. */
export function isDead(rec: RunStatusRecord, now = Date.now()): boolean {
  if (rec.status !== 'running') return false;
  if (rec.host === hostname()) return !isAlive(rec.pid);
  return now - Date.parse(rec.updatedAt) > STALE_MS;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new NmlabError('BAD_FILE', `${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The runs of one project folder. */
export class RunStore {
  readonly root: string;

  /** `projectDir` must hold `nmlab.json` (create projects with `nmlab project init`). */
  constructor(readonly projectDir: string) {
    if (!existsSync(join(projectDir, 'nmlab.json')))
      throw new NmlabError('BAD_PROJECT', `${resolve(projectDir)} is not an NMLab project (no nmlab.json); create one with \`nmlab project init\` or pick its folder`);
    this.root = join(projectDir, 'runs');
  }

  /** Create `runs/<id>/` with its config and a `running` status owned by this process. */
  async create(kind: string, config: Record<string, unknown>): Promise<Run> {
    const id = newRunId();
    const dir = join(this.root, id);
    await mkdir(dir, { recursive: true });
    await writeJsonAtomic(join(dir, 'config.json'), { id, kind, createdAt: new Date().toISOString(), ...config });
    const run = new Run(id, dir);
    await run.start();
    return run;
  }

  /** Every run, oldest first (ids sort by time). Folders that are not runs are skipped. */
  async list(): Promise<RunListing[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: RunListing[] = [];
    for (const id of names.filter((n) => ID_RE.test(n)).sort()) {
      const dir = join(this.root, id);
      const config = (await readJson(join(dir, 'config.json')).catch(() => null)) as Record<string, unknown> | null;
      if (!config) continue;
      const stored = (await readJson(join(dir, 'status.json')).catch(() => null)) as RunStatusRecord | null;
      // No status at all: created and killed in the same instant.
      const status: RunState = !stored ? 'interrupted' : isDead(stored) ? 'interrupted' : stored.status;
      out.push({ id, kind: String(config.kind ?? ''), createdAt: String(config.createdAt ?? ''), status, stored, config });
    }
    return out;
  }

  /** The result of a run (null until it has one). */
  async result(id: string): Promise<unknown> {
    if (!ID_RE.test(id)) throw new NmlabError('BAD_REQUEST', `"${id}" is not a run id`);
    return readJson(join(this.root, id, 'result.json'));
  }
}

/** A run this process owns: metrics, log lines and the final status. */
export class Run {
  private status!: RunStatusRecord;
  private timer: NodeJS.Timeout | null = null;
  private pending: string[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly dir: string,
  ) {}

  /** Write the `running` status and start the heartbeat. */
  async start(): Promise<void> {
    const now = new Date().toISOString();
    this.status = { status: 'running', updatedAt: now, startedAt: now, endedAt: null, pid: process.pid, host: hostname(), error: null };
    await writeJsonAtomic(join(this.dir, 'status.json'), this.status);
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private beat(): Promise<void> {
    this.status = { ...this.status, updatedAt: new Date().toISOString() };
    const snapshot = this.status;
    this.chain = this.chain.then(() => writeJsonAtomic(join(this.dir, 'status.json'), snapshot)).catch(() => undefined);
    return this.chain;
  }

  /** Queue a metric point; points are appended in order, in batches (see {@link Run.flush}). */
  metric(series: string, step: number, values: Record<string, number>): void {
    this.pending.push(JSON.stringify({ series, step, values } satisfies RunMetricPoint));
    if (this.pending.length >= 256) void this.flush();
  }

  /** Append queued metric points to metrics.jsonl. */
  flush(): Promise<void> {
    if (this.pending.length > 0) {
      const text = this.pending.join('\n') + '\n';
      this.pending = [];
      this.chain = this.chain.then(() => appendFile(join(this.dir, 'metrics.jsonl'), text));
    }
    return this.chain;
  }

  /** Append a timestamped line to log.txt. */
  log(line: string): Promise<void> {
    this.chain = this.chain.then(() => appendFile(join(this.dir, 'log.txt'), `${new Date().toISOString()} ${line}\n`));
    return this.chain;
  }

  /** Write result.json, then mark the run succeeded (in that order: succeeded implies a whole result). */
  async succeed(result: unknown): Promise<void> {
    await this.flush();
    await writeJsonAtomic(join(this.dir, 'result.json'), result);
    await this.end('succeeded', null);
  }

  /** Mark the run failed or cancelled, with the reason. */
  async fail(error: unknown, status: 'failed' | 'cancelled' = 'failed'): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    await this.flush();
    await this.log(`${status}: ${message}`);
    await this.end(status, message);
  }

  private async end(status: RunState, error: string | null): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.chain;
    const now = new Date().toISOString();
    this.status = { ...this.status, status, updatedAt: now, endedAt: now, error };
    await writeJsonAtomic(join(this.dir, 'status.json'), this.status);
  }
}
