/**
 * The experiment views of the run folders (DESIGN §5): summaries and details for the runs list,
 * the run page and reports. The layout and every file primitive (run ids, `status.json`, log,
 * metrics, results, interrupted detection) belong to src/core/runs (./layout.ts, ./files.ts
 * there); they are re-exported here so experiment code keeps one import.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { MetricPoint, TuneRunResult, type RunDetail, type RunSummary } from '../../shared/contract/experiments';
import { NmlabError } from '../../shared/errors';
import { errnoCode, fsError } from '../projects/fsErrors';
import { CONFIG_FILE, LOG_FILE, METRICS_FILE, RESULT_FILE, RunId, RunStatusRecord } from '../runs/layout';
import { createRunFolder, effectiveStatus, listRunIds, nextRunStatus, readRunJson, readRunStatus, runDir, writeResultIn, writeStatusIn } from '../runs/files';

export { RUNS_FOLDER, RunId } from '../runs/layout';
export { MetricsWriter, appendRunLog, markInterrupted, readRunStatus, runDir, setRunStatus } from '../runs/files';

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

/** `status.json` (the schema lives in src/core/runs/layout.ts). */
export const RunStatusFile = RunStatusRecord;
export type RunStatusFile = RunStatusRecord;

/** Make the run folder with its config and a `running` status (no pid until a worker takes it). */
export async function createRun(projectDir: string, config: RunConfig): Promise<string> {
  const dir = await createRunFolder(projectDir, config);
  await writeStatusIn(dir, nextRunStatus(null, 'running', { pid: null }));
  return dir;
}

export async function writeRunResult(projectDir: string, id: string, result: TuneRunResult): Promise<void> {
  await writeResultIn(await runDir(projectDir, id), result);
}

/** `result.json` of a run of any stage (tuning runs write a {@link TuneRunResult} through the tune kind). */
export async function writeRunJson(projectDir: string, id: string, result: unknown): Promise<void> {
  await writeResultIn(await runDir(projectDir, id), result);
}

export async function readRunResult(projectDir: string, id: string): Promise<TuneRunResult | null> {
  return readRunJson(join(await runDir(projectDir, id), RESULT_FILE), TuneRunResult, 'run result');
}

/**
 * The evaluation fields every fit's result carries — a black-box TuneRunResult and a white-box
 * FinetuneResult (ft, lora) alike: what the comparison reads.
 */
export const FitEvaluation = TuneRunResult.pick({ test: true, targets: true, oodAccuracy: true, oodLsvr: true, backboneSve: true, backboneLsvr: true });
export type FitEvaluation = z.infer<typeof FitEvaluation>;

export async function readFitEvaluation(projectDir: string, id: string): Promise<FitEvaluation | null> {
  return readRunJson(join(await runDir(projectDir, id), RESULT_FILE), FitEvaluation, 'run result');
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
  const result = status?.status === 'succeeded' ? await readRunResult(projectDir, id).catch(() => null) : null;
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
  const [config, result, metrics, log] = await Promise.all([
    readRunConfig(projectDir, id),
    // Runs of other kinds keep results of their own shape; the detail shows their metrics and log.
    readRunResult(projectDir, id).catch(() => null),
    readRunMetrics(projectDir, id),
    tail(join(dir, LOG_FILE), 64 * 1024),
  ]);
  return { summary, config: (config ?? {}) as Record<string, unknown>, result, metrics, log };
}
