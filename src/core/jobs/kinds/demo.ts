/**
 * `demo`: `nmlab demo` as a job, the app's "Open demo project" (src/core/demo, docs/demo.md).
 * Runs or resumes the paper's noise study into a project folder; a folder that already holds
 * the results of the same study returns at once, so opening the demo a second time is instant.
 *
 * Progress is in wall seconds: `done` is the time spent, `total` that plus the study's own ETA
 * (src/core/demo/progress.ts, which learns the machine's speed per stage kind), so the runner's
 * rate-based ETA is the study's and the bar fills as the time runs out. The message names the
 * stage, its index and its share done. Pre-training runs in nested worker processes (the demo's
 * own JobRunner with `forkLauncher`, the bundled out/node/worker.mjs beside this one);
 * cancelling aborts them and stops after the current step; running again resumes.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DemoJobResult } from '../../../shared/contract/demo';
import { FULL_CONFIG, QUICK_CONFIG, hashOf } from '../../demo/config';
import { runDemo } from '../../demo/pipeline';
import { formatDuration, type DemoStatus } from '../../demo/progress';
import { nmlabHome } from '../../paths';
import type { JobRun } from './types';

/** The default demo folder, `<NMLAB_HOME>/demo-project`. */
export function defaultDemoDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(nmlabHome(env), 'demo-project');
}

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
  const pct = Math.round(s.fraction * 100);
  // Most important first: the bar's message is cut to one line.
  const what = s.ended ? `${s.label} done` : `${s.label} ${pct}%${s.detail ? ` · ${s.detail}` : ''}`;
  return `Stage ${s.stage}/${s.stages}: ${what}`;
}

export const run: JobRun<'demo'> = async (spec, ctx) => {
  const quick = spec.quick || process.env.NMLAB_DEMO_QUICK === '1';
  const config = quick ? QUICK_CONFIG : FULL_CONFIG;
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
  const { results, resultsDir } = await runDemo({
    dir,
    config,
    // The text lines are for terminals; the job reports stage ends as log lines and the rest
    // through `onStatus`.
    progress: { write: () => undefined, isTTY: false },
    onStatus: (s) => {
      const spent = (performance.now() - t0) / 1000;
      const left = Math.max(0, s.etaSeconds);
      // Never report "finished" before the study is: the last stage's end has left = 0.
      ctx.progress(spent, spent + Math.max(left, s.stagesDone < s.stages ? 0.5 : 0), statusMessage(s));
      if (s.ended) ctx.log('info', `${s.label} done (${s.stagesDone} of ${s.stages} stages; elapsed ${formatDuration(spent)}, ETA ${formatDuration(left)})`);
    },
    signal: ctx.signal,
    ...(spec.workers !== undefined ? { workers: spec.workers } : {}),
  });
  ctx.progress(1, 1, 'demo study finished');
  return DemoJobResult.parse({
    dir,
    preset: results.preset,
    reused: false,
    resultsFile: join(resultsDir, 'demo-results.json'),
    wallSeconds: results.timing.wallSeconds,
  });
};
