/**
 * Tuning runs (paper §6; DESIGN §4, §9): {@link runTuneFit} is the one function that fits LP,
 * MLP or NMTune on feature sets, evaluates the ID test set and every OOD target, and writes
 * the run folder (src/core/runs: config.json, metrics.jsonl, log.txt, result.json in the
 * `TuneRunResult` shape of src/shared/contract/tuning.ts). The queue's `tune` job kind (below),
 * `nmlab tune` and the demo all call it; nothing else writes tuning results.
 *
 * metrics.jsonl gets every step's loss terms (`loss`), and per epoch the accuracy and
 * macro-F1 of that epoch's model on the monitor set (the ID test, else the first target) and
 * the spectrum of its Z (`epoch`, `spectrum`). `status.json` becomes `succeeded` only after
 * `result.json` is whole.
 */
import type { JobRun, JobContext } from './types';
import type { ExperimentJob } from '../../../shared/contract/experiments';
import { TuneRunResult, TUNE_SPECTRUM_PREPROCESS, type EvalResult, type TuneOverrides, type TuneParams } from '../../../shared/contract/tuning';
import { NmlabError } from '../../../shared/errors';
import { resolveInside } from '../../projects/resolveInside';
import { loadFeatureSet } from '../../tuning/load';
import { makeTuner, type EpochEvent, type FeatureTuner, type StepEvent, type TuneMethod } from '../../tuning/tuner';
import { resolveTuneParams } from '../../tuning/params';
import { downstreamLabels } from '../../tuning/downstreamNoise';
import { checkFeatureSet, type FeatureSet } from '../../tuning/data';
import { accuracy, macroF1 } from '../../tuning/metrics';
import { singularValuesOf } from '../../tuning/zSpectrum';
import { spectrumStats } from '../../spectrum/stats';
import { classCountOf, unseenClassWarning } from '../../arrays/validate';
import { RunStore, Run } from '../../runs/store';
import { runDir } from '../../runs/files';

/** Live messages to the parent per series, at most one per this many ms (the file gets every point). */
const LIVE_INTERVAL_MS = 100;
/** Rows of the monitor set used for the per-epoch spectrum (the final one uses all rows). */
const EPOCH_SPECTRUM_ROWS = 2000;
/** Singular values kept in results and per-epoch points. */
const TOP_K = 256;
const EPOCH_TOP_K = 64;

/** The sets of one fit: train on `train`; evaluate on `test` and every target. */
export interface TuneFitData {
  train: FeatureSet;
  /** The ID test set (or the OOD source's own test split); null when there is none. */
  test: FeatureSet | null;
  targets: Array<{ name: string; set: FeatureSet }>;
}

/** Where the run is written. */
export interface TuneFitRun {
  projectDir: string;
  /** A run folder that already exists (the queue made it, with its config); absent: a new `runs/<id>/` of kind `tune`. */
  runId?: string;
  /** Recorded in a new run's config.json beside the resolved parameters (inputs, study keys, …). */
  config?: Record<string, unknown>;
}

export interface TuneFitOptions {
  /**
   * Where to write: a project (new run, or the queue's existing one), a `Run` the caller
   * already started (e.g. a resumable stage; runTuneFit writes its metrics, log and result and
   * ends it), or null/absent: in memory only.
   */
  run?: TuneFitRun | Run | null;
  signal?: AbortSignal;
  onStep?: (e: StepEvent) => void;
  /** After each epoch, with that epoch's model's accuracy and macro-F1 on the monitor set. */
  onEpoch?: (e: EpochEvent & { accuracy: number | null; macroF1: number | null }) => void;
  /** Every metric point as it is written (series, step, values), for live views. */
  onMetric?: (series: string, step: number, values: Record<string, number>) => void;
  /** Every log line as it is written. */
  onLog?: (line: string) => void;
}

export interface TuneFitOutcome {
  /** The run written (null in memory). */
  runId: string | null;
  runDir: string | null;
  result: TuneRunResult;
}

function maxLabel(sets: FeatureSet[]): number {
  let m = 0;
  for (const s of sets) for (let i = 0; i < s.labels.length; i++) if (s.labels[i] > m) m = s.labels[i];
  return m;
}

function spectrumValues(sigma: number[], k: number): Record<string, number> {
  const values: Record<string, number> = {};
  sigma.slice(0, k).forEach((s, i) => (values[String(i)] = s));
  return values;
}

/** Accuracy, macro-F1 and the spectra of Z and of the backbone's F (reference preprocessing, and raw), on one set. */
function evaluate(tuner: FeatureTuner, set: FeatureSet, name: string): EvalResult {
  const m = tuner.evaluate(set);
  const f = spectrumStats(singularValuesOf(set.features, set.rows, set.dim, TUNE_SPECTRUM_PREPROCESS));
  const fRaw = spectrumStats(singularValuesOf(set.features, set.rows, set.dim, 'none'));
  // An all-zero spectrum has no SVE or LSVR (spectrumStats gives NaN); say why instead of
  // failing the result's schema check.
  if (![m.z.sve, m.zRaw.sve].every(Number.isFinite))
    throw new NmlabError('NUMERIC', `${name}: the tuned features Z are all zero (or constant per row), so their spectrum is undefined; the MLP collapsed — lower the learning rate or the term weights`);
  if (![f.sve, fRaw.sve].every(Number.isFinite)) throw new NmlabError('NUMERIC', `${set.name ?? name}: the backbone features are all zero (or constant per row); their spectrum is undefined`);
  return {
    name,
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    rows: m.rows,
    sve: m.z.sve,
    lsvr: m.z.lsvr,
    sveRaw: m.zRaw.sve,
    lsvrRaw: m.zRaw.lsvr,
    backboneSve: f.sve,
    backboneLsvr: f.lsvr,
    backboneSveRaw: fRaw.sve,
    backboneLsvrRaw: fRaw.lsvr,
  };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** Open the run folder to write: the queue's existing one, or a new one. */
async function openRun(target: TuneFitRun, params: TuneParams): Promise<Run> {
  if (target.runId) {
    const run = new Run(target.runId, await runDir(target.projectDir, target.runId));
    await run.start();
    return run;
  }
  return new RunStore(target.projectDir).create('tune', { method: params.method, preset: params.preset, params, ...target.config });
}

/**
 * Check a fit's sets as {@link runTuneFit} does before it writes anything: something to
 * evaluate on, one feature width, finite values, dense class labels. Returns the evaluation sets.
 */
export function checkTuneFitData(method: TuneMethod, data: TuneFitData): Array<{ name: string; set: FeatureSet }> {
  const { train, test, targets } = data;
  const evalSets = [...(test ? [{ name: 'test', set: test }] : []), ...targets];
  if (evalSets.length === 0) throw new NmlabError('BAD_REQUEST', `tuning ${method} on ${train.name ?? 'the training set'}: no test set and no OOD target to evaluate on; give at least one`);
  for (const { name, set } of evalSets)
    if (set.dim !== train.dim)
      throw new NmlabError('BAD_FILE', `${set.name ?? name}: ${set.dim} feature columns, but the training features (${train.name ?? 'train'}) have ${train.dim}; both must come from the same backbone`);
  checkFeatureSet(train, train.name ?? 'training set');
  for (const { name, set } of evalSets) checkFeatureSet(set, set.name ?? name);
  // Issue 12 item 2: K is dense and bounded by the training rows (the message names the file).
  classCountOf(train.labels, train.labelsName ?? train.name ?? 'training labels');
  return evalSets;
}

/**
 * Fit one tuner (`overrides` resolved against the method's and preset's defaults), evaluate it
 * on the test set and every target, and write the run. Cancellation (`signal`) stops after
 * the current step; the run is then marked cancelled and a CANCELLED error thrown. Any other
 * failure marks the run failed and rethrows.
 */
export async function runTuneFit(overrides: TuneOverrides & { method: TuneMethod }, data: TuneFitData, opts: TuneFitOptions = {}): Promise<TuneFitOutcome> {
  const { train, test, targets } = data;
  // Every set is checked before a run folder exists: a bad input leaves nothing behind.
  const evalSets = checkTuneFitData(overrides.method, data);
  const numClasses = overrides.numClasses ?? maxLabel([train, ...evalSets.map((e) => e.set)]) + 1;
  const params = resolveTuneParams({ ...overrides, numClasses }, `tuning ${overrides.method}`);
  const run = opts.run instanceof Run ? opts.run : opts.run ? await openRun(opts.run, params) : null;
  const log = async (line: string) => {
    opts.onLog?.(line);
    await run?.log(line);
  };
  const metric = (series: string, step: number, values: Record<string, number>) => {
    run?.metric(series, step, values);
    opts.onMetric?.(series, step, values);
  };
  const tuner = makeTuner(params);
  try {
    const noisy = downstreamLabels(train.labels, params.downstreamNoise, params.seed, numClasses);
    const trainSet: FeatureSet = { ...train, labels: noisy.labels };
    await log(`tune ${params.method} (${params.preset}): train ${train.rows}×${train.dim}, ${numClasses} classes; eval ${evalSets.map((e) => `${e.name} ${e.set.rows}`).join(', ') || 'none'}`);
    if (params.downstreamNoise.eta > 0)
      await log(`downstream noise η ${params.downstreamNoise.eta} (${params.downstreamNoise.semantics}, seed ${noisy.result.seed}): ${noisy.result.flipped} of ${train.rows} labels changed (${(100 * noisy.result.realisedFlipRate).toFixed(2)} %)`);
    await log(`params: ${JSON.stringify(params)}`);
    // Test classes the training labels never use: accuracy on those rows is 0 by construction.
    for (const { name, set } of evalSets) {
      const w = unseenClassWarning(train.labels, set.labels, train.labelsName ?? train.name ?? 'the training set', set.labelsName ?? set.name ?? name);
      if (w) await log(`warning: ${w}`);
    }

    const monitor = evalSets[0] ?? null;
    await tuner.fit(trainSet, {
      signal: opts.signal,
      onStep: (e) => {
        const values: Record<string, number> = { total: e.total, ce: e.ce, lr: e.lr };
        if (e.mse !== undefined) values.mse = e.mse;
        if (e.cov !== undefined) values.cov = e.cov;
        if (e.svd !== undefined) values.svd = e.svd;
        metric('loss', e.step, values);
        opts.onStep?.(e);
      },
      onEpoch: (e) => {
        const values: Record<string, number> = { meanLoss: e.meanLoss, seconds: e.seconds };
        let acc: number | null = null;
        let f1: number | null = null;
        if (monitor) {
          // The epoch's model (the fit syncs it before this callback), eval mode.
          const { z, predictions } = tuner.transformPredict(monitor.set);
          acc = values.accuracy = accuracy(monitor.set.labels, predictions);
          f1 = values.macroF1 = macroF1(monitor.set.labels, predictions);
          const rows = Math.min(EPOCH_SPECTRUM_ROWS, monitor.set.rows);
          const sigma = singularValuesOf(z.subarray(0, rows * train.dim), rows, train.dim, TUNE_SPECTRUM_PREPROCESS);
          metric('spectrum', e.epoch, spectrumValues(sigma, EPOCH_TOP_K));
        }
        metric('epoch', e.epoch, values);
        opts.onEpoch?.({ ...e, accuracy: acc, macroF1: f1 });
      },
    });
    const stopped = tuner.stopped_!;
    if (stopped.reason === 'aborted' || opts.signal?.aborted)
      throw new NmlabError('CANCELLED', `tuning ${params.method} cancelled at step ${stopped.steps} of ${stopped.totalSteps}${run ? ` (run ${run.id})` : ''}`);

    const testResult = test ? evaluate(tuner, test, 'test') : null;
    const targetResults: EvalResult[] = [];
    for (const t of targets) {
      if (opts.signal?.aborted) throw new NmlabError('CANCELLED', `tuning ${params.method} cancelled during evaluation`);
      targetResults.push(evaluate(tuner, t.set, t.name));
    }
    let singularValues: number[] = [];
    let backboneSingularValues: number[] = [];
    if (monitor) {
      singularValues = singularValuesOf(tuner.transform(monitor.set), monitor.set.rows, train.dim, TUNE_SPECTRUM_PREPROCESS).slice(0, TOP_K);
      backboneSingularValues = singularValuesOf(monitor.set.features, monitor.set.rows, train.dim, TUNE_SPECTRUM_PREPROCESS).slice(0, TOP_K);
      metric('backboneSpectrum', 0, spectrumValues(backboneSingularValues, EPOCH_TOP_K));
    }
    // The set Z's headline SVE is read on: the ID test, else the first target (one exists).
    const first = (testResult ?? targetResults[0])!;
    const result = TuneRunResult.parse({
      method: params.method,
      preset: params.preset,
      engine: tuner.engine_ ?? 'tfjs',
      backend: tuner.backend_ ?? 'unknown',
      test: testResult,
      targets: targetResults,
      oodAccuracy: mean(targetResults.map((t) => t.accuracy)),
      oodLsvr: mean(targetResults.map((t) => t.lsvr)),
      spectrumPreprocess: TUNE_SPECTRUM_PREPROCESS,
      singularValues,
      backboneSingularValues,
      // F's SVE and LSVR on the same sets as Z's (the ID test, and the mean over OOD targets).
      backboneSve: first.backboneSve!,
      backboneLsvr: targetResults.length ? mean(targetResults.map((t) => t.backboneLsvr!))! : first.backboneLsvr!,
      downstreamNoise: noisy.result,
      stopped,
      seconds: tuner.fitSeconds_,
      trainRows: tuner.trainRows_,
      epochs: params.epochs,
      params,
    } satisfies TuneRunResult);
    await log(`done in ${result.seconds.toFixed(2)} s on ${result.backend}${testResult ? `: test accuracy ${testResult.accuracy.toFixed(4)}` : ''}${result.oodAccuracy !== null ? `, OOD accuracy ${result.oodAccuracy.toFixed(4)}` : ''}`);
    await run?.succeed(result);
    return { runId: run?.id ?? null, runDir: run?.dir ?? null, result };
  } catch (err) {
    const cancelled = err instanceof NmlabError && err.code === 'CANCELLED';
    if (run) await run.fail(err, cancelled ? 'cancelled' : 'failed').catch(() => undefined);
    throw err;
  } finally {
    tuner.dispose();
  }
}

async function load(projectDir: string, src: { features: string; labels: string }, what: string): Promise<FeatureSet> {
  const [f, y] = await Promise.all([resolveInside(projectDir, src.features), resolveInside(projectDir, src.labels)]);
  const set = await loadFeatureSet(f, y);
  return { ...set, name: `${what} (${src.features})` };
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

/** The overrides of a queue job: the spec's resolved overrides, then the job's axes. */
export function jobOverrides(job: ExperimentJob): TuneOverrides & { method: TuneMethod } {
  return { ...job.params, method: job.baseMethod, preset: job.preset, seed: job.seed, fraction: job.fraction };
}

/** The queue's `tune` job: one fit of an experiment, in a worker process, into the run the queue created. */
export const run: JobRun<'tune'> = async (spec, ctx) => {
  const { projectDir, runId, job } = spec;
  const overrides = jobOverrides(job);
  const { epochs } = resolveTuneParams(overrides, `job ${job.key}`);
  // A forked worker outlives a parent killed with SIGKILL; with nobody to report to it must
  // stop, or it would go on writing a run the next queue has already marked interrupted.
  const orphaned = () => process.exit(1);
  process.once('disconnect', orphaned);
  const live = liveSender(ctx);
  let totalSteps = 0;
  try {
    const train = await load(projectDir, job.train, 'training set');
    const test = job.test ? await load(projectDir, job.test, 'test set') : null;
    const targets = await Promise.all(job.targets.map(async (t) => ({ name: t.name, set: await load(projectDir, t, `target ${t.name}`) })));
    const { result } = await runTuneFit(overrides, { train, test, targets }, {
      run: { projectDir, runId },
      signal: ctx.signal,
      onLog: (line) => ctx.log('info', line),
      onMetric: (series, step, values) => live.send(series, step, values),
      onStep: (e) => {
        totalSteps = e.totalSteps;
        ctx.progress(e.step, e.totalSteps, `epoch ${e.epoch + 1} of ${epochs}`);
      },
    });
    ctx.progress(totalSteps, totalSteps, 'done');
    return { runId, accuracy: result.test?.accuracy ?? null, oodAccuracy: result.oodAccuracy };
  } finally {
    live.flush();
    process.off('disconnect', orphaned);
  }
};
