/**
 * `tune`: one tuning run of an experiment (LP, MLP or NMTune on backbone features; paper §6),
 * in a worker process. It reads the job's feature files from the project, trains, evaluates on
 * the ID test and every OOD target, and writes the run folder the queue created
 * (src/core/experiments/runStore.ts): every step's loss terms and every epoch's accuracy and
 * spectrum go to `metrics.jsonl` at full resolution, while the live stream to the parent is
 * thinned to a few messages a second (the UI only needs the shape; the file has every point).
 * `status.json` becomes `succeeded` only after `result.json` is whole.
 */
import { join } from 'node:path';
import type { JobRun, JobContext } from './types';
import type { EvalResult, ExperimentJob, FeatureSource, TuneRunResult } from '../../../shared/contract/experiments';
import { NmlabError } from '../../../shared/errors';
import { resolveInside } from '../../projects/resolveInside';
import { loadFeatureSet } from '../../tuning/load';
import { makeTuner, type FeatureTuner, type TuneParams } from '../../tuning/tuner';
import type { FeatureSet } from '../../tuning/data';
import { accuracy } from '../../tuning/metrics';
import { singularValuesSync, spectrumOfMatrix } from '../../spectrum/spectrum';
import { spectrumStats } from '../../spectrum/stats';
import { MetricsWriter, appendRunLog, runDir, setRunStatus, writeRunResult } from '../../experiments/runStore';

/** Live messages to the parent per series, at most one per this many ms (the file gets every point). */
const LIVE_INTERVAL_MS = 100;
/** Rows of an evaluation set used for the per-epoch spectrum (the final one uses all rows). */
const EPOCH_SPECTRUM_ROWS = 2000;
/** Singular values kept in results and per-epoch points. */
const TOP_K = 256;
const EPOCH_TOP_K = 64;

async function load(projectDir: string, src: FeatureSource, what: string): Promise<FeatureSet> {
  const [f, y] = await Promise.all([resolveInside(projectDir, src.features), resolveInside(projectDir, src.labels)]);
  const set = await loadFeatureSet(f, y);
  return { ...set, name: `${what} (${src.features})` };
}

function maxLabel(sets: FeatureSet[]): number {
  let m = 0;
  for (const s of sets) for (let i = 0; i < s.labels.length; i++) if (s.labels[i] > m) m = s.labels[i];
  return m;
}

/** The first `rows` rows of a set (row-major views, no copy). */
function headRows(set: FeatureSet, rows: number): FeatureSet {
  const n = Math.min(rows, set.rows);
  return { ...set, rows: n, features: set.features.subarray(0, n * set.dim), labels: set.labels.subarray(0, n) };
}

/** A throttle per series: the latest point goes out at most every LIVE_INTERVAL_MS, the last one always. */
function liveSender(ctx: JobContext): { send: (series: string, step: number, values: Record<string, number>) => void; flush: () => void } {
  const pending = new Map<string, { step: number; values: Record<string, number> }>();
  const last = new Map<string, number>();
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    for (const [series, p] of pending) {
      ctx.metric(series, p.step, p.values);
      last.set(series, Date.now());
    }
    pending.clear();
  };
  return {
    send(series, step, values) {
      pending.set(series, { step, values });
      const wait = (last.get(series) ?? 0) + LIVE_INTERVAL_MS - Date.now();
      if (wait <= 0) flush();
      else timer ??= setTimeout(flush, wait);
    },
    flush,
  };
}

function spectrumValues(sigma: number[], k: number): Record<string, number> {
  const values: Record<string, number> = {};
  sigma.slice(0, k).forEach((s, i) => (values[String(i)] = s));
  return values;
}

export function tuneParams(job: ExperimentJob, numClasses: number): Partial<TuneParams> & { method: TuneParams['method'] } {
  return { ...job.params, method: job.baseMethod, preset: job.preset, seed: job.seed, fraction: job.fraction, numClasses };
}

/** Accuracy, macro-F1 and the spectra of Z and of the backbone's F, on the same set. */
async function evaluate(tuner: FeatureTuner, set: FeatureSet, name: string): Promise<EvalResult> {
  const m = tuner.evaluate(set);
  const f = spectrumStats(singularValuesSync(set.features, set.rows, set.dim));
  return { name, accuracy: m.accuracy, macroF1: m.macroF1, rows: m.rows, sve: m.z.sve, lsvr: m.z.lsvr, backboneSve: f.sve, backboneLsvr: f.lsvr };
}

export const run: JobRun<'tune'> = async (spec, ctx) => {
  const { projectDir, runId, job } = spec;
  // A forked worker outlives a parent killed with SIGKILL; with nobody to report to it must
  // stop, or it would go on writing a run the next queue has already marked interrupted.
  process.once('disconnect', () => process.exit(1));
  const dir = await runDir(projectDir, runId);
  await setRunStatus(projectDir, runId, 'running', { pid: process.pid });
  const log = (line: string) => {
    ctx.log('info', line);
    return appendRunLog(projectDir, runId, line);
  };
  await log(`run ${runId}: ${job.key} (pid ${process.pid})`);

  const train = await load(projectDir, job.train, 'training set');
  const test = job.test ? await load(projectDir, job.test, 'test set') : null;
  const targets = await Promise.all(job.targets.map(async (t) => ({ name: t.name, set: await load(projectDir, t, `target ${t.name}`) })));
  const evalSets = [...(test ? [{ name: 'test', set: test }] : []), ...targets];
  for (const { set } of evalSets) {
    if (set.dim !== train.dim) throw new NmlabError('BAD_FILE', `${set.name}: ${set.dim} feature columns, but the training features have ${train.dim}; both must come from the same backbone`);
  }
  const numClasses = maxLabel([train, ...evalSets.map((e) => e.set)]) + 1;
  const tuner = makeTuner(tuneParams(job, numClasses));
  const params = tuner.getParams();
  await log(`data: train ${train.rows}×${train.dim}, ${numClasses} classes; eval ${evalSets.map((e) => `${e.name} ${e.set.rows}`).join(', ') || 'none'}`);
  await log(`params: ${JSON.stringify(params)}`);

  const metrics = new MetricsWriter(join(dir, 'metrics.jsonl'));
  const live = liveSender(ctx);
  const monitor = evalSets[0] ?? null;
  let totalSteps = 0;
  try {
    await tuner.fit(train, {
      signal: ctx.signal,
      onStep: (e) => {
        totalSteps = e.totalSteps;
        const values: Record<string, number> = { total: e.total, ce: e.ce, lr: e.lr };
        if (e.mse !== undefined) values.mse = e.mse;
        if (e.cov !== undefined) values.cov = e.cov;
        if (e.svd !== undefined) values.svd = e.svd;
        metrics.push({ series: 'loss', step: e.step, values });
        live.send('loss', e.step, values);
        ctx.progress(e.step, e.totalSteps, `epoch ${e.epoch + 1} of ${params.epochs}`);
      },
      onEpoch: (e) => {
        const values: Record<string, number> = { meanLoss: e.meanLoss, seconds: e.seconds };
        if (monitor) {
          // Accuracy per epoch on the first evaluation set (eval mode, running BatchNorm stats).
          values.accuracy = accuracy(monitor.set.labels, tuner.predict(monitor.set));
          const sample = headRows(monitor.set, EPOCH_SPECTRUM_ROWS);
          const sigma = singularValuesSync(tuner.transform(sample), sample.rows, sample.dim);
          const point = { series: 'spectrum', step: e.epoch, values: spectrumValues(sigma, EPOCH_TOP_K) };
          metrics.push(point);
          live.send('spectrum', e.epoch, point.values);
        }
        metrics.push({ series: 'epoch', step: e.epoch, values });
        live.send('epoch', e.epoch, values);
      },
    });
  } finally {
    live.flush();
    await metrics.flush();
  }
  if (tuner.stopped_?.reason === 'aborted' || ctx.signal.aborted) {
    await log(`cancelled after ${tuner.stopped_?.steps} of ${tuner.stopped_?.totalSteps} steps`);
    throw new NmlabError('CANCELLED', `run ${runId} cancelled at step ${tuner.stopped_?.steps} of ${tuner.stopped_?.totalSteps}`);
  }

  // Final evaluation: accuracy, macro-F1, SVE/LSVR of Z on every set; the full spectrum on the first.
  const testResult = test ? await evaluate(tuner, test, 'test') : null;
  const targetResults: EvalResult[] = [];
  for (const t of targets) {
    if (ctx.signal.aborted) throw new NmlabError('CANCELLED', `run ${runId} cancelled during evaluation`);
    targetResults.push(await evaluate(tuner, t.set, t.name));
  }
  let singularValues: number[] = [];
  let backbone = { singularValues: [] as number[], sve: NaN, lsvr: NaN };
  if (monitor) {
    const z = tuner.transform(monitor.set);
    const zs = await spectrumOfMatrix(z, monitor.set.rows, train.dim, `Z of ${monitor.name}`, { gram: 'js', topK: TOP_K });
    singularValues = zs.singularValues;
    const fs = await spectrumOfMatrix(monitor.set.features, monitor.set.rows, train.dim, `F of ${monitor.name}`, { gram: 'js', topK: TOP_K });
    backbone = { singularValues: fs.singularValues, sve: fs.sve, lsvr: fs.lsvr };
    metrics.push({ series: 'backboneSpectrum', step: 0, values: spectrumValues(backbone.singularValues, EPOCH_TOP_K) });
  }
  await metrics.flush();

  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const result: TuneRunResult = {
    method: params.method,
    test: testResult,
    targets: targetResults,
    oodAccuracy: job.taskType === 'ood' ? mean(targetResults.map((t) => t.accuracy)) : null,
    oodLsvr: job.taskType === 'ood' ? mean(targetResults.map((t) => t.lsvr)) : null,
    singularValues,
    backboneSingularValues: backbone.singularValues,
    // F's SVE and LSVR on the same sets as Z's (the ID test, and the mean over OOD targets).
    backboneSve: testResult?.backboneSve ?? targetResults[0]?.backboneSve ?? backbone.sve,
    backboneLsvr: job.taskType === 'ood' ? (mean(targetResults.map((t) => t.backboneLsvr ?? NaN)) ?? backbone.lsvr) : (testResult?.backboneLsvr ?? backbone.lsvr),
    backend: tuner.backend_ ?? 'unknown',
    seconds: tuner.fitSeconds_,
    trainRows: tuner.trainRows_,
    epochs: params.epochs,
    params: params as unknown as Record<string, unknown>,
  };
  tuner.dispose();
  await writeRunResult(projectDir, runId, result);
  await setRunStatus(projectDir, runId, 'succeeded');
  await log(`done in ${result.seconds.toFixed(2)} s on ${result.backend}: ${testResult ? `test accuracy ${testResult.accuracy.toFixed(4)}` : ''}${result.oodAccuracy !== null ? ` OOD accuracy ${result.oodAccuracy.toFixed(4)}` : ''}`);
  ctx.progress(totalSteps, totalSteps, 'done');
  return { runId, accuracy: testResult?.accuracy ?? null, oodAccuracy: result.oodAccuracy };
};
