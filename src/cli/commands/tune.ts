/**
 * `nmlab tune`: linear probing, MLP tuning or black-box NMTune (paper §6.1, eq. 4–7) on feature
 * files, evaluated on a test set: accuracy, macro-F1 and the spectrum (SVE, LSVR) of the tuned
 * features Z. With --project the run is saved in the project's runs/ folder.
 */
import { resolve } from 'node:path';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type Command } from '../command';
import { loadFeatureSet } from '../../core/tuning/load';
import { makeTuner, defaultParams, type TuneMethod, type TuneParams, type NmtunePreset } from '../../core/tuning/tuner';
import { RunStore, type Run } from '../../core/runs/store';
import type { ScheduleKind } from '../../core/tuning/schedule';

const USAGE = `Usage: nmlab tune --train-features A.npy --train-labels a.npy --test-features B.npy --test-labels b.npy
                  --method lp|mlp|nmtune [options]

Trains on the training features and reports, on the test set, accuracy, macro-F1 (0–1) and the
SVE and LSVR of the tuned features Z (for lp, Z is the features themselves).

Options:
  --method M           lp (linear head), mlp (MLP D→4D→D + head) or nmtune (MLP + eq. 4–6 terms)
  --preset P           NMTune preset: paper (λ = 0.01 on MSE, COV, SVD; σ₁ ratio; default) or
                       reference (weights 1, 0.04, 0.001; top-5 ratio; feature-noise views)
  --epochs N           default 30
  --fraction F         stratified fraction of the training set, (0, 1]; default 1
  --seed S             default 0
  --lr X               default 0.01 (lp) or 0.001 (mlp, nmtune)
  --weight-decay X     AdamW decoupled decay; default 0 (lp) or 1e-4
  --batch-size N       default 128
  --schedule S         cosine (default), linear or constant
  --warmup-epochs N    linear warm-up length in epochs; default 0
  --engine E           auto (default: onnxruntime for mlp/nmtune where it loads, else tfjs),
                       tfjs or ort; both compute the same step
  --project DIR        save the run in DIR/runs/<id>/ (DIR must hold nmlab.json)
  --json               print one JSON object (accuracy, macroF1, backend, seconds, z, config, …)

Without --json, progress goes to stderr and a summary to stdout. Ctrl-C stops after the
current step; the run is then saved as cancelled.
`;

function choice<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'LP, MLP or NMTune on feature files; accuracy, macro-F1, SVE/LSVR of Z',
  usage: USAGE,
  options: {
    'train-features': { type: 'string' },
    'train-labels': { type: 'string' },
    'test-features': { type: 'string' },
    'test-labels': { type: 'string' },
    method: { type: 'string' },
    preset: { type: 'string' },
    epochs: { type: 'string' },
    fraction: { type: 'string' },
    seed: { type: 'string' },
    lr: { type: 'string' },
    'weight-decay': { type: 'string' },
    'batch-size': { type: 'string' },
    schedule: { type: 'string' },
    'warmup-epochs': { type: 'string' },
    engine: { type: 'string' },
    project: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const method = choice(requireOpt(args, 'method'), ['lp', 'mlp', 'nmtune'] as const, 'method') as TuneMethod;
    const files = {
      trainFeatures: resolve(requireOpt(args, 'train-features')),
      trainLabels: resolve(requireOpt(args, 'train-labels')),
      testFeatures: resolve(requireOpt(args, 'test-features')),
      testLabels: resolve(requireOpt(args, 'test-labels')),
    };
    const overrides: Partial<TuneParams> = {};
    const preset = choice(stringOpt(args, 'preset'), ['paper', 'reference'] as const, 'preset') as NmtunePreset | undefined;
    if (preset) overrides.preset = preset;
    const schedule = choice(stringOpt(args, 'schedule'), ['cosine', 'linear', 'constant'] as const, 'schedule') as ScheduleKind | undefined;
    if (schedule) overrides.schedule = schedule;
    const engine = choice(stringOpt(args, 'engine'), ['auto', 'tfjs', 'ort'] as const, 'engine');
    if (engine) overrides.engine = engine;
    const num: Array<[string, keyof TuneParams, (v: number) => boolean, string]> = [
      ['epochs', 'epochs', (v) => Number.isInteger(v) && v >= 1, 'a positive integer'],
      ['fraction', 'fraction', (v) => v > 0 && v <= 1, 'in (0, 1]'],
      ['seed', 'seed', (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'],
      ['lr', 'lr', (v) => v > 0, 'positive'],
      ['weight-decay', 'weightDecay', (v) => v >= 0, 'non-negative'],
      ['batch-size', 'batchSize', (v) => Number.isInteger(v) && v >= 2, 'an integer ≥ 2'],
      ['warmup-epochs', 'warmupEpochs', (v) => v >= 0, 'non-negative'],
    ];
    for (const [flag, key, ok, what] of num) {
      const v = numberOpt(args, flag);
      if (v === undefined) continue;
      if (!ok(v)) throw new UsageError(`--${flag} must be ${what}, got ${v}`);
      (overrides as Record<string, number>)[key] = v;
    }
    const json = args.values.json === true;
    const projectDir = stringOpt(args, 'project');
    const store = projectDir ? new RunStore(projectDir) : null;

    const [train, test] = await Promise.all([
      loadFeatureSet(files.trainFeatures, files.trainLabels),
      loadFeatureSet(files.testFeatures, files.testLabels),
    ]);
    if (test.dim !== train.dim) throw new UsageError(`${files.testFeatures} has ${test.dim} columns but ${files.trainFeatures} has ${train.dim}; both must come from the same backbone`);
    let maxLabel = 0;
    for (const s of [train, test]) for (let i = 0; i < s.labels.length; i++) maxLabel = Math.max(maxLabel, s.labels[i]);
    const tuner = makeTuner({ ...defaultParams(method), ...overrides, method, numClasses: maxLabel + 1 });
    const params = tuner.getParams();
    const config = { method, preset: method === 'nmtune' ? params.preset : null, terms: method === 'nmtune' ? tuner.termWeights() : null, params, inputs: files };

    let run: Run | null = null;
    if (store) {
      run = await store.create('tune', config);
      await run.log(`tune ${method}: train ${train.rows}×${train.dim}, test ${test.rows}, ${maxLabel + 1} classes`);
      if (!json) io.err(`run ${run.id} in ${resolve(projectDir!)}/runs\n`);
    }
    const ctl = new AbortController();
    const onSigint = () => ctl.abort();
    process.once('SIGINT', onSigint);
    try {
      await tuner.fit(train, {
        signal: ctl.signal,
        onStep: (e) => {
          const { epoch: _e, step, totalSteps: _t, ...values } = e;
          run?.metric('loss', step, values as Record<string, number>);
        },
        onEpoch: (e) => {
          run?.metric('epoch', e.epoch, { meanLoss: e.meanLoss, seconds: e.seconds });
          if (!json) io.err(`epoch ${e.epoch}/${e.epochs}  loss ${e.meanLoss.toFixed(4)}  ${e.seconds.toFixed(2)} s\n`);
        },
      });
      const m = tuner.evaluate(test);
      const result = {
        method,
        accuracy: m.accuracy,
        macroF1: m.macroF1,
        backend: tuner.backend_,
        engine: tuner.engine_,
        seconds: tuner.fitSeconds_,
        z: m.z,
        trainRows: tuner.trainRows_,
        testRows: m.rows,
        stopped: tuner.stopped_,
        config,
        ...(run ? { runId: run.id, runDir: run.dir } : {}),
      };
      const aborted = tuner.stopped_?.reason === 'aborted';
      if (run) {
        if (aborted) await run.fail(`cancelled (SIGINT) after ${tuner.stopped_?.steps} of ${tuner.stopped_?.totalSteps} steps`, 'cancelled');
        else await run.succeed(result);
      }
      if (json) printJson(io, result);
      else {
        io.out(`${method}${method === 'nmtune' ? ` (${params.preset})` : ''}: accuracy ${(m.accuracy * 100).toFixed(2)} %, macro-F1 ${m.macroF1.toFixed(4)}\n`);
        io.out(`  Z: SVE ${m.z.sve.toFixed(4)}, LSVR ${m.z.lsvr.toFixed(4)}; backend ${tuner.backend_}, ${tuner.fitSeconds_.toFixed(1)} s${aborted ? ' (stopped early)' : ''}\n`);
      }
      return aborted ? 130 : 0;
    } catch (err) {
      if (run) await run.fail(err);
      throw err;
    } finally {
      process.off('SIGINT', onSigint);
      tuner.dispose();
    }
  },
};
