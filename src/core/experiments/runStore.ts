/**
 * The run folders experiments write (DESIGN §5): `runs/<id>/config.json` (written once),
 * `status.json` (running → succeeded | failed | cancelled | interrupted), `metrics.jsonl`
 * (appended as the run goes), `result.json` and `log.txt`.
 *
 * Crash rules: JSON files are replaced atomically, so each one is always whole; the only file
 * that can be torn by a kill is the last line of `metrics.jsonl` (an append cut short), and the
 * reader skips a line that does not parse. A run is finished when `status.json` says
 * `succeeded`, which the worker writes only after `result.json` is complete.
 *
 * TODO(runs): when src/core/runs (the shared run store) lands, delegate the layout to it and
 * keep only the experiment-specific reading here.
 */
import { appendFile, mkdir, readFile, readdir, stat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { z } from 'zod';
import {
  MetricPoint,
  RunStatus,
  TuneRunResult,
  type RunDetail,
  type RunSummary,
} from '../../shared/contract/experiments';
import { NmlabError } from '../../shared/errors';
import { writeJsonAtomic } from '../fs/atomic';
import { resolveInside } from '../projects/resolveInside';
import { errnoCode, fsError } from '../projects/fsErrors';
import { processAlive } from './store';

export const RUNS_FOLDER = 'runs';

export const RunId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$/, 'a run id is letters, digits, ".", "-" and "_"');

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

/** `status.json`: where the run stands. */
export const RunStatusFile = z.object({
  status: RunStatus,
  updatedAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  pid: z.number().int().nullable(),
  /** The machine of `pid` (src/core/runs writes it too). */
  host: z.string().optional(),
  error: z.string().nullable(),
});
export type RunStatusFile = z.infer<typeof RunStatusFile>;

/** Absolute folder of run `id`, checked to stay inside the project. */
export async function runDir(projectDir: string, id: string): Promise<string> {
  const parsed = RunId.safeParse(id);
  if (!parsed.success) throw new NmlabError('BAD_REQUEST', `"${id}" is not a run id: ${parsed.error.issues[0]?.message}`);
  return resolveInside(projectDir, join(RUNS_FOLDER, id));
}

/** Make the run folder with its config and a `running` status. */
export async function createRun(projectDir: string, config: RunConfig): Promise<string> {
  const dir = await runDir(projectDir, config.id);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw fsError(err, 'create', dir);
  }
  await writeJsonAtomic(join(dir, 'config.json'), config);
  const now = new Date().toISOString();
  await writeJsonAtomic(join(dir, 'status.json'), { status: 'running', updatedAt: now, startedAt: now, endedAt: null, pid: null, host: hostname(), error: null } satisfies RunStatusFile);
  return dir;
}

async function readJsonFile<T>(file: string, schema: z.ZodType<T>, what: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw fsError(err, 'read', file);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new NmlabError('BAD_FILE', `${file} is not valid JSON (${err instanceof Error ? err.message : String(err)}); the ${what} is damaged`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new NmlabError('BAD_FILE', `${file} is not a valid ${what}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export async function readRunStatus(projectDir: string, id: string): Promise<RunStatusFile | null> {
  return readJsonFile(join(await runDir(projectDir, id), 'status.json'), RunStatusFile, 'run status');
}

/** Update the status; `endedAt` is set for terminal statuses. */
export async function setRunStatus(projectDir: string, id: string, status: RunStatus, patch: { pid?: number | null; error?: string | null } = {}): Promise<void> {
  const dir = await runDir(projectDir, id);
  const prev = await readRunStatus(projectDir, id);
  const now = new Date().toISOString();
  const next: RunStatusFile = {
    status,
    updatedAt: now,
    startedAt: prev?.startedAt ?? now,
    endedAt: status === 'running' ? null : now,
    pid: patch.pid !== undefined ? patch.pid : (prev?.pid ?? null),
    host: hostname(),
    error: patch.error !== undefined ? patch.error : status === 'running' || status === 'succeeded' ? null : (prev?.error ?? null),
  };
  await writeJsonAtomic(join(dir, 'status.json'), next);
}

/**
 * Mark a run that was `running` as `interrupted` (its process is gone); a run that finished
 * meanwhile keeps its status. Returns the status the run ends up with (null: no such run).
 */
export async function markInterrupted(projectDir: string, id: string, reason: string): Promise<RunStatus | null> {
  const st = await readRunStatus(projectDir, id).catch(() => null);
  if (!st) return null;
  if (st.status !== 'running') return st.status;
  await setRunStatus(projectDir, id, 'interrupted', { error: reason });
  await appendRunLog(projectDir, id, `interrupted: ${reason}`);
  return 'interrupted';
}

export async function appendRunLog(projectDir: string, id: string, line: string): Promise<void> {
  const dir = await runDir(projectDir, id);
  await appendFile(join(dir, 'log.txt'), `${new Date().toISOString()} ${line}\n`);
}

export async function writeRunResult(projectDir: string, id: string, result: TuneRunResult): Promise<void> {
  await writeJsonAtomic(join(await runDir(projectDir, id), 'result.json'), result);
}

export async function readRunResult(projectDir: string, id: string): Promise<TuneRunResult | null> {
  return readJsonFile(join(await runDir(projectDir, id), 'result.json'), TuneRunResult, 'run result');
}

export async function readRunConfig(projectDir: string, id: string): Promise<RunConfig | null> {
  return readJsonFile(join(await runDir(projectDir, id), 'config.json'), RunConfig, 'run config');
}

/**
 * Appends metric points to `metrics.jsonl` in batches (one write per flush), so a run with
 * thousands of steps does not do thousands of writes. `flush()` before the run ends.
 */
export class MetricsWriter {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly intervalMs = 250,
  ) {}

  push(point: MetricPoint): void {
    this.buffer.push(JSON.stringify(point));
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
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

/**
 * The points of `metrics.jsonl`. A line that does not parse can only be the last one, cut by a
 * kill mid-append; it is skipped. Series longer than `maxPoints` are thinned evenly (the last
 * point is always kept).
 */
export async function readRunMetrics(projectDir: string, id: string, maxPoints = 2000): Promise<MetricPoint[]> {
  const file = join(await runDir(projectDir, id), 'metrics.jsonl');
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
  const result = status?.status === 'succeeded' ? await readRunResult(projectDir, id).catch(() => null) : null;
  // A `running` run whose process is gone reads as interrupted (nothing is written here; the
  // queue marks it on disk when it resumes). A folder without a status was created and killed
  // in the same instant.
  const dead = status?.status === 'running' && status.pid !== null && (status.host ?? hostname()) === hostname() && !processAlive(status.pid);
  return {
    id,
    status: !status || dead ? 'interrupted' : status.status,
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
  const root = await resolveInside(projectDir, RUNS_FOLDER);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError(err, 'list', root);
  }
  const out: RunSummary[] = [];
  for (const name of names.sort()) {
    if (!RunId.safeParse(name).success) continue;
    try {
      if (!(await stat(join(root, name))).isDirectory()) continue;
      const s = await readRunSummary(projectDir, name);
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
  const [config, result, metrics, log] = await Promise.all([
    readRunConfig(projectDir, id),
    // Runs of other kinds keep results of their own shape; the detail shows their metrics and log.
    readRunResult(projectDir, id).catch(() => null),
    readRunMetrics(projectDir, id),
    tail(join(dir, 'log.txt'), 64 * 1024),
  ]);
  return { summary, config: (config ?? {}) as Record<string, unknown>, result, metrics, log };
}
