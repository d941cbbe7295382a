/**
 * The comparison of an experiment (DESIGN §6): one row per (backbone, task, method, fraction)
 * with mean ± std over the seeds that finished, as the paper's Table 4 reports them, and the
 * per-γ series of Figures 2, 3, 5 and 7 (ID accuracy and SVE, OOD accuracy and LSVR).
 * Standard deviations are the sample std (n − 1); a single seed has none.
 */
import type { CompareResult, CompareRow, ExperimentFile, QueueEntry, Stat, TuneRunResult } from '../../shared/contract/experiments';
import { readRunResult } from './runStore';

/** Mean and sample standard deviation of finite values; null when there are none. */
export function stat(values: Array<number | null | undefined>): Stat | null {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return { mean, std: null, n: 1 };
  const ss = xs.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (xs.length - 1)), n: xs.length };
}

export async function compareExperiment(projectDir: string, exp: ExperimentFile, entries: QueueEntry[]): Promise<CompareResult> {
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const groups = new Map<string, { job: ExperimentFile['jobs'][number]; seeds: number[]; results: TuneRunResult[] }>();
  let finished = 0;
  for (const job of exp.jobs) {
    const cell = `${job.backbone}\u0000${job.task}\u0000${job.method}\u0000${job.fraction}`;
    let g = groups.get(cell);
    if (!g) groups.set(cell, (g = { job, seeds: [], results: [] }));
    const entry = byKey.get(job.key);
    if (entry?.state !== 'succeeded' || !entry.runId) continue;
    const result = await readRunResult(projectDir, entry.runId).catch(() => null);
    if (!result) continue;
    finished++;
    g.seeds.push(job.seed);
    g.results.push(result);
  }
  const rows: CompareRow[] = [...groups.values()].map(({ job, seeds, results }) => ({
    backbone: job.backbone,
    gamma: job.gamma,
    task: job.task,
    taskType: job.taskType,
    method: job.method,
    fraction: job.fraction,
    seeds,
    accuracy: stat(results.map((r) => r.test?.accuracy)),
    macroF1: stat(results.map((r) => r.test?.macroF1)),
    oodAccuracy: stat(results.map((r) => r.oodAccuracy)),
    // SVE on the ID test (Figure 3a); LSVR on the OOD targets (Figure 3b), else on the test set.
    sve: stat(results.map((r) => r.test?.sve ?? r.targets[0]?.sve)),
    lsvr: stat(results.map((r) => r.oodLsvr ?? r.test?.lsvr)),
    backboneSve: stat(results.map((r) => r.backboneSve)),
    backboneLsvr: stat(results.map((r) => r.backboneLsvr)),
  }));
  return { experimentId: exp.id, name: exp.spec.name, preset: exp.spec.preset, rows, finished, total: exp.jobs.length };
}

export { compareToCsv } from '../../shared/contract/experiments';
