/**
 * The run store (DESIGN §5): one folder per run under `<project>/runs/<id>/`, in the layout of
 * ./layout.ts (config, status with pid, host and heartbeat, metrics.jsonl, result, log),
 * written through the primitives of ./files.ts — the same ones experiments use, so both see
 * the same runs.
 *
 * A {@link Run} is owned by this process: it keeps a heartbeat (`updatedAt`, refreshed every
 * {@link HEARTBEAT_MS}) while running. A run whose process died still says `running` on disk;
 * {@link RunStore.list} reports it as `interrupted` when its pid is gone (same host) or its
 * heartbeat is stale (another host), without writing (`isDead` in ./layout.ts).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { requireProject } from '../projects/manifest';
import { CONFIG_FILE, METRICS_FILE, RESULT_FILE, STATUS_FILE, HEARTBEAT_MS, RunStatusRecord, newRunId, type RunState } from './layout';
import { MetricsWriter, appendLogIn, createRunFolder, effectiveStatus, listRunIds, nextRunStatus, readRunJson, runDir, writeResultIn, writeStatusIn } from './files';

export { HEARTBEAT_MS, STALE_MS, isDead, newRunId, type RunState, type RunStatusRecord } from './layout';

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

const AnyConfig = z.record(z.string(), z.unknown());

/** The runs of one project folder. */
export class RunStore {
  readonly root: string;

  /** `projectDir` must hold `nmlab.json` (create projects with `nmlab project create`). */
  constructor(readonly projectDir: string) {
    requireProject(projectDir);
    this.root = join(projectDir, 'runs');
  }

  /** Create `runs/<id>/` with its config and a `running` status owned by this process. */
  async create(kind: string, config: Record<string, unknown>): Promise<Run> {
    const id = newRunId();
    const dir = await createRunFolder(this.projectDir, { id, kind, createdAt: new Date().toISOString(), ...config });
    const run = new Run(id, dir);
    await run.start();
    return run;
  }

  /** Every run, oldest first for runs made here (their ids sort by time). Folders that are not runs are skipped. */
  async list(): Promise<RunListing[]> {
    const out: RunListing[] = [];
    for (const id of await listRunIds(this.projectDir)) {
      const dir = join(this.root, id);
      const config = await readRunJson(join(dir, CONFIG_FILE), AnyConfig, 'run config').catch(() => null);
      if (!config) continue;
      const stored = await readRunJson(join(dir, STATUS_FILE), RunStatusRecord, 'run status').catch(() => null);
      out.push({ id, kind: String(config.kind ?? ''), createdAt: String(config.createdAt ?? ''), status: effectiveStatus(stored), stored, config });
    }
    return out;
  }

  /** The result of a run (null until it has one). */
  async result(id: string): Promise<unknown> {
    return readRunJson(join(await runDir(this.projectDir, id), RESULT_FILE), z.unknown(), 'run result');
  }
}

/** A run this process owns: metrics, log lines and the final status. */
export class Run {
  private status!: RunStatusRecord;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  // Written on demand (flush) or once 256 points wait; no timer, so a run's metrics land where
  // its own code flushes them.
  private readonly metrics: MetricsWriter;

  constructor(
    readonly id: string,
    readonly dir: string,
  ) {
    this.metrics = new MetricsWriter(join(dir, METRICS_FILE), null, 256);
  }

  /** Write the `running` status and start the heartbeat. */
  async start(): Promise<void> {
    this.status = nextRunStatus(null, 'running', { pid: process.pid });
    await writeStatusIn(this.dir, this.status);
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private beat(): Promise<void> {
    this.status = nextRunStatus(this.status, 'running');
    const snapshot = this.status;
    this.chain = this.chain.then(() => writeStatusIn(this.dir, snapshot)).catch(() => undefined);
    return this.chain;
  }

  /** Queue a metric point; points are appended in order, in batches (see {@link Run.flush}). */
  metric(series: string, step: number, values: Record<string, number>): void {
    this.metrics.push({ series, step, values } satisfies RunMetricPoint);
  }

  /** Append queued metric points to metrics.jsonl. */
  flush(): Promise<void> {
    this.chain = Promise.all([this.chain, this.metrics.flush()]).then(() => undefined);
    return this.chain;
  }

  /** Append a timestamped line to log.txt. */
  log(line: string): Promise<void> {
    this.chain = this.chain.then(() => appendLogIn(this.dir, line));
    return this.chain;
  }

  /** Write result.json, then mark the run succeeded (in that order: succeeded implies a whole result). */
  async succeed(result: unknown): Promise<void> {
    await this.flush();
    await writeResultIn(this.dir, result);
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
    this.status = nextRunStatus(this.status, status, { error });
    await writeStatusIn(this.dir, this.status);
  }
}
