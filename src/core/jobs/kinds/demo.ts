/**
 * `demo`: `nmlab demo` as a job, the app's "Open demo project" (src/core/demo, docs/demo.md).
 * Opens the demo project at `dir` (the CLI's default folder unless another is chosen) and runs
 * only what is missing of the demo study: a folder that already holds the results of the same
 * study returns at once; an interrupted one resumes (the study's queue skips finished jobs).
 *
 * Progress is in wall seconds: `done` is the time spent, `total` that plus the queue's ETA, so
 * the runner's rate-based ETA is the study's and the bar fills as the time runs out. The
 * message says how many of the study's jobs are done and which one just changed. The study's
 * jobs run in nested worker processes (this worker's own queue); cancelling cancels them and
 * running again resumes.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DemoJobResult } from '../../../shared/contract/demo';
import { QUICK_CONFIG, STANDARD_CONFIG, defaultDemoDir } from '../../demo/config';
import { hashOf } from '../../experiments/graph';
import { runDemo } from '../../demo/study';
import { formatDuration, type DemoStatus } from '../../demo/progress';
import { ExperimentService } from '../../experiments/service';
import { JobRunner } from '../runner';
import type { JobRun } from './types';

/** Results already in `dir` for this exact study, or null (none, unreadable, another study). */
async function finishedResults(dir: string, configHash: string): Promise<{ file: string; wallSeconds: number } | null> {
  const file = join(dir, 'results', 'demo-results.json');
  try {
    const raw = JSON.parse(await readFile(file, 'utf8')) as { config?: unknown; timing?: { wallSeconds?: unknown } };
    if (!raw.config || hashOf(raw.config) !== configHash) return null;
    return { file, wallSeconds: typeof raw.timing?.wallSeconds === 'number' ? raw.timing.wallSeconds : 0 };
  } catch {
    return null;
  }
}

function statusMessage(s: DemoStatus): string {
  // Most important first: the bar's message is cut to one line.
  return `${s.done}/${s.total} jobs${s.label ? ` · ${s.label}${s.ended ? ' done' : ''}` : ''}`;
}

export const run: JobRun<'demo'> = async (spec, ctx) => {
  const quick = spec.quick || process.env.NMLAB_DEMO_QUICK === '1';
  const config = quick ? QUICK_CONFIG : STANDARD_CONFIG;
  const dir = resolve(spec.dir ?? defaultDemoDir());
  const existing = await finishedResults(dir, hashOf(config));
  if (existing) {
    ctx.progress(1, 1, `the demo project in ${dir} already has its results`);
    return DemoJobResult.parse({ dir, preset: config.preset, reused: true, resultsFile: existing.file, wallSeconds: 0 });
  }
  ctx.log('info', `demo (${config.preset}) into ${dir}`);
  // `done` is seconds since this first report, so the runner's rate (from the first report) is
  // exactly one per second and its ETA is the study's own.
  const t0 = performance.now();
  ctx.progress(0, 1, 'starting the demo study');
  const workers = spec.workers ?? 2;
  // The study's jobs run in worker processes of this worker (the bundled worker beside this one).
  const runner = new JobRunner({ maxConcurrent: 256 });
  const experiments = new ExperimentService({ runner, concurrency: workers });
  let outcome;
  try {
    outcome = await runDemo({
      dir,
      config,
      experiments,
      // The text lines are for terminals; the job reports through `onStatus`.
      progress: { write: () => undefined, isTTY: false },
      onStatus: (s) => {
        const spent = (performance.now() - t0) / 1000;
        const left = Math.max(0, s.etaSeconds);
        // Never report "finished" before the study is.
        ctx.progress(spent, spent + Math.max(left, s.done < s.total ? 0.5 : 0), statusMessage(s));
        if (s.ended) ctx.log('info', `${s.label} done (${s.done} of ${s.total} jobs; elapsed ${formatDuration(spent)}, ETA ${formatDuration(left)})`);
      },
      signal: ctx.signal,
    });
  } finally {
    await experiments.dispose();
    await runner.dispose();
  }
  const { results, resultsDir } = outcome;
  ctx.progress(1, 1, 'demo study finished');
  return DemoJobResult.parse({
    dir,
    preset: results.preset,
    reused: false,
    resultsFile: join(resultsDir, 'demo-results.json'),
    wallSeconds: results.timing.wallSeconds,
  });
};
