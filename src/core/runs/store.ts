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
 *
 * Below the class: the run folders as the queue makes them (`createRun`, a config without a
 * process) and as the runs table, the run page, the comparison and reports read them.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { NmlabError } from '../../shared/errors';
import { MetricPoint, type RunDetail, type RunSummary } from '../../shared/contract/experiments';
import { TuneRunResult, TuneRunResultFile, isTuneRunResultLike, type StoredTuneRunResult } from '../../shared/contract/tuning';
import { missingFields } from '../../shared/contract/legacy';
import { requireProject } from '../projects/manifest';
import { errnoCode, fsError } from '../fs/errors';
import { checkJson } from '../fs/json';
import { CONFIG_FILE, LOG_FILE, METRICS_FILE, RESULT_FILE, STATUS_FILE, HEARTBEAT_MS, RunId, RunStatusRecord, newRunId, type RunState } from './layout';
import { MetricsWriter, appendLogIn, createRunFolder, effectiveStatus, listRunIds, nextRunStatus, readRunJson, readRunStatus, runDir, writeResultIn, writeStatusIn } from './files';

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

// ---- run folders as the queue, the runs table, the run page and reports read them ----------

/** `config.json`: what the run is, fixed when it is created. */
export const RunConfig = z
  .object({
    id: RunId,
    kind: z.string(),
    // Runs made outside experiments (e.g. `nmlab tune --project`, src/core/runs) have none of these.
    experimentId: z.string().nullable().default(null),
    jobKey: z.string().nullable().default(null),
    attempt: z.number().int().min(1).default(1),
    createdAt: z.string(),
  })
  .passthrough();
export type RunConfig = z.infer<typeof RunConfig>;

/** Make the run folder with its config and a `running` status (no pid until a worker takes it). */
export async function createRun(projectDir: string, config: RunConfig): Promise<string> {
  const dir = await createRunFolder(projectDir, config);
  await writeStatusIn(dir, nextRunStatus(null, 'running', { pid: null }));
  return dir;
}

/** `result.json` of a run of any stage (tuning runs write a {@link TuneRunResult} through the tune kind). */
export async function writeRunJson(projectDir: string, id: string, result: unknown): Promise<void> {
  await writeResultIn(await runDir(projectDir, id), result);
}

/**
 * A tuning run's result: the current shape, or an old one upgraded (`upgradeTuneRunResult` in
 * src/shared/contract/tuning.ts); null until there is one. A damaged file or one that does not
 * check throws BAD_FILE naming the file and the problem.
 */
export async function readTuneRunResult(projectDir: string, id: string): Promise<StoredTuneRunResult | null> {
  return readRunJson(join(await runDir(projectDir, id), RESULT_FILE), TuneRunResultFile, 'tuning result');
}

/**
 * What the run page shows of `result.json`: a tuning result, or null for results of other shapes
 * (they have their own readers); a damaged file or a tuning result that does not check gives
 * `error` instead, so the page still shows the config, metrics and log.
 */
async function tuneResultOrError(projectDir: string, id: string): Promise<{ result: StoredTuneRunResult | null; error: string | null }> {
  try {
    return { result: await readTuneRunResult(projectDir, id), error: null };
  } catch (err) {
    const raw = await readRunJson(join(await runDir(projectDir, id), RESULT_FILE), z.unknown(), 'run result').catch(() => undefined);
    if (raw !== undefined && !isTuneRunResultLike(raw)) return { result: null, error: null };
    return { result: null, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The evaluation fields every fit's result carries — a black-box TuneRunResult and a white-box
 * FinetuneResult (ft, lora) alike: what the comparison reads.
 */
export const FitEvaluation = TuneRunResult.pick({ test: true, targets: true, oodAccuracy: true, oodLsvr: true, backboneSve: true, backboneLsvr: true });
export type FitEvaluation = z.infer<typeof FitEvaluation>;

/** A fit's evaluation, and the fields its result lacks when an older NMLab wrote it (`missingFields`). */
export async function readFitEvaluation(projectDir: string, id: string): Promise<(FitEvaluation & { missing: string[] }) | null> {
  const r = await readRunJson(join(await runDir(projectDir, id), RESULT_FILE), FitEvaluation.passthrough(), 'run result');
  return r && { ...r, missing: missingFields('study.tune', r) };
}

/**
 * A run's `result.json` of any kind as readers show it: a tuning result upgraded
 * (`readTuneRunResult`; a damaged one throws BAD_FILE naming the file), others as they are;
 * `missing` names what an older NMLab did not record. Null until there is a result.
 */
export async function readRunResult(projectDir: string, id: string, kind: string): Promise<{ result: unknown; missing: string[] } | null> {
  const file = join(await runDir(projectDir, id), RESULT_FILE);
  const raw = await readRunJson(file, z.unknown(), 'run result');
  if (raw === null) return null;
  // The file is read once; a tuning result is then checked (and upgraded) as readTuneRunResult does.
  const result = isTuneRunResultLike(raw) ? checkJson(file, raw, TuneRunResultFile, 'tuning result') : raw;
  return { result, missing: missingFields(kind, raw) };
}

/** Whether a run's `result.json` is there and whole (any stage's result; a tuning run's is a TuneRunResult). */
export async function runFinished(projectDir: string, id: string): Promise<boolean> {
  return (await readRunJson(join(await runDir(projectDir, id), RESULT_FILE), z.unknown(), 'run result').catch(() => null)) != null;
}

export async function readRunConfig(projectDir: string, id: string): Promise<RunConfig | null> {
  return readRunJson(join(await runDir(projectDir, id), CONFIG_FILE), RunConfig, 'run config');
}

/**
 * The points of `metrics.jsonl`. A line that does not parse can only be the last one, cut by a
 * kill mid-append; it is skipped. Series longer than `maxPoints` are thinned evenly (the last
 * point is always kept).
 */
export async function readRunMetrics(projectDir: string, id: string, maxPoints = 2000): Promise<MetricPoint[]> {
  const file = join(await runDir(projectDir, id), METRICS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError(err, 'read', file);
  }
  const bySeries = new Map<string, MetricPoint[]>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    const p = MetricPoint.safeParse(raw);
    if (!p.success) continue;
    const list = bySeries.get(p.data.series) ?? [];
    list.push(p.data);
    bySeries.set(p.data.series, list);
  }
  const out: MetricPoint[] = [];
  for (const list of bySeries.values()) out.push(...thin(list, maxPoints));
  return out;
}

/** Every k-th point so that at most `max` remain, always keeping the last. */
export function thin<T>(list: T[], max: number): T[] {
  if (list.length <= max) return list;
  const k = Math.ceil(list.length / max);
  const out = list.filter((_, i) => i % k === 0);
  if (out[out.length - 1] !== list[list.length - 1]) out.push(list[list.length - 1]);
  return out;
}

async function tail(file: string, bytes: number): Promise<string> {
  let h;
  try {
    h = await open(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return '';
    throw fsError(err, 'read', file);
  }
  try {
    const size = (await h.stat()).size;
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    await h.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await h.close();
  }
}

export async function readRunSummary(projectDir: string, id: string): Promise<RunSummary> {
  const [config, status] = await Promise.all([readRunConfig(projectDir, id), readRunStatus(projectDir, id)]);
  if (!config) throw new NmlabError('NOT_FOUND', `no run "${id}" in ${projectDir} (runs/${id}/config.json is missing); see \`nmlab runs list\``);
  const result = status?.status === 'succeeded' ? await readTuneRunResult(projectDir, id).catch(() => null) : null;
  // A `running` run whose process is gone reads as interrupted (nothing is written here; the
  // queue marks it on disk when it resumes); so does a folder without a status.
  return {
    id,
    status: effectiveStatus(status),
    kind: config.kind,
    experimentId: config.experimentId,
    jobKey: config.jobKey,
    attempt: config.attempt,
    createdAt: config.createdAt,
    endedAt: status?.endedAt ?? null,
    error: status?.error ?? null,
    accuracy: result && 'test' in result ? (result.test?.accuracy ?? null) : null,
    oodAccuracy: result?.oodAccuracy ?? null,
  };
}

/** Every run of the project (optionally of one experiment), oldest first. Damaged folders are skipped. */
export async function listRuns(projectDir: string, experimentId?: string): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  for (const id of await listRunIds(projectDir)) {
    try {
      const s = await readRunSummary(projectDir, id);
      if (experimentId === undefined || s.experimentId === experimentId) out.push(s);
    } catch {
      /* not a run folder (or a damaged one): listed by `nmlab runs show`, not here */
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

export async function readRunDetail(projectDir: string, id: string): Promise<RunDetail> {
  const summary = await readRunSummary(projectDir, id);
  const dir = await runDir(projectDir, id);
  const [config, tuned, metrics, log] = await Promise.all([
    readRunConfig(projectDir, id),
    // Runs of other kinds keep results of their own shape; the detail shows their metrics and log.
    tuneResultOrError(projectDir, id),
    readRunMetrics(projectDir, id),
    tail(join(dir, LOG_FILE), 64 * 1024),
  ]);
  return { summary, config: (config ?? {}) as Record<string, unknown>, result: tuned.result, resultError: tuned.error, metrics, log };
}
