/**
 * The tuning estimators (LP, MLP, NMTune): LP against scikit-learn's multinomial logistic
 * regression on a fixture feature set (test/fixtures/tuning/make_tuning_fixtures.py), the
 * estimator interface (STYLE.md convention 5), step events, cancellation and reproducibility.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { loadFeatureSet } from '../../src/core/tuning/load';
import { LinearProbe, MlpTuner, NMTune, makeTuner, type StepEvent } from '../../src/core/tuning/tuner';
import { tuneDefaults } from '../../src/shared/contract/tuning';
import type { FeatureSet } from '../../src/core/tuning/data';
import { NmlabError } from '../../src/shared/errors';
import { initTfBackend } from '../../src/core/tf/backend';

const dir = fileURLToPath(new URL('../fixtures/tuning/', import.meta.url));
const meta = JSON.parse(readFileSync(dir + 'lp_meta.json', 'utf8')) as { sklearnAccuracy: number; classes: number };
let train: FeatureSet;
let test: FeatureSet;

beforeAll(async () => {
  await initTfBackend();
  train = await loadFeatureSet(dir + 'lp_train_x.npy', dir + 'lp_train_y.npy');
  test = await loadFeatureSet(dir + 'lp_test_x.npy', dir + 'lp_test_y.npy');
});

describe('LinearProbe', () => {
  for (const seed of [0, 1])
    it(`paper defaults (AdamW lr 0.01, cosine, 30 epochs), seed ${seed}: within 1 point of sklearn`, async () => {
      const lp = await new LinearProbe({ seed }).fit(train);
      const m = lp.evaluate(test);
      expect(Math.abs(m.accuracy - meta.sklearnAccuracy)).toBeLessThanOrEqual(0.01);
      expect(m.macroF1).toBeGreaterThan(0.85);
      expect(m.macroF1).toBeLessThanOrEqual(1);
      expect(lp.stopped_).toEqual({ reason: 'completed', epochsDone: 30, steps: 30 * 4, totalSteps: 120 });
      // Z of a linear probe is F itself: its spectrum is the features' spectrum.
      expect(m.z.sve).toBeGreaterThan(0);
      expect(m.z.lsvr).toBeGreaterThan(0);
      lp.dispose();
    });
});

describe('estimator interface', () => {
  it('stores params, rejects unknown ones, clones unfitted, throws NOT_FITTED before fit', () => {
    const est = new NMTune({ epochs: 3, preset: 'reference' });
    expect(est.getParams()).toEqual({ ...tuneDefaults('nmtune', 'reference'), epochs: 3 });
    // the authors' README command: batch 64, residual MLP (s init 1.0), kaiming head, weights 1 / 0.04 / 0.001, top-5
    expect(est.getParams()).toMatchObject({ batchSize: 64, residual: true, residualScaleInit: 1, headInit: 'kaiming-zero', terms: { mse: 1, cov: 0.04, svd: 0.001, svdTopK: 5 } });
    expect(JSON.parse(JSON.stringify(est.getParams()))).toEqual(est.getParams());
    expect(() => est.setParams({ bogus: 1 } as never)).toThrow(/unknown parameter "bogus"/);
    est.setParams({ lr: 0.005 });
    const copy = est.clone();
    expect(copy).toBeInstanceOf(NMTune);
    expect(copy.getParams().lr).toBe(0.005);
    expect(copy.isFitted).toBe(false);
    try {
      copy.evaluate(test);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NmlabError);
      expect((e as NmlabError).code).toBe('NOT_FITTED');
    }
    expect(makeTuner({ method: 'mlp' })).toBeInstanceOf(MlpTuner);
  });

  it('fit returns this; MLP defaults are the paper’s (lr 1e-3, wd 1e-4)', async () => {
    const mlp = new MlpTuner({ epochs: 2 });
    expect(mlp.getParams()).toMatchObject({ lr: 0.001, weightDecay: 1e-4, mlpRatio: 4, hiddenBlocks: 1 });
    expect(await mlp.fit(train)).toBe(mlp);
    expect(mlp.backend_).toBeTruthy();
    const z = mlp.transform(test);
    expect(z.length).toBe(test.rows * test.dim);
    mlp.dispose();
  });
});

describe('NMTune training', () => {
  for (const preset of ['paper', 'reference'] as const)
    it(`${preset}: emits every loss term per step, lowers the loss, leaks no tensors`, async () => {
      const before = tf.memory().numTensors;
      const events: StepEvent[] = [];
      const est = await new NMTune({ epochs: 4, preset, batchSize: 100, lr: 0.003 }).fit(train, { onStep: (e) => events.push(e) });
      const w = est.termWeights()!;
      expect(events.length).toBe(4 * 5);
      for (const e of events) {
        for (const k of ['ce', 'mse', 'cov', 'svd', 'total', 'lr'] as const) expect(Number.isFinite(e[k])).toBe(true);
        expect(e.total).toBeCloseTo(e.ce + w.mse * e.mse! + w.cov * e.cov! + w.svd * e.svd!, 4);
        expect(e.svd!).toBeLessThan(0);
      }
      const first = events.slice(0, 5).reduce((s, e) => s + e.ce, 0);
      const last = events.slice(-5).reduce((s, e) => s + e.ce, 0);
      expect(last).toBeLessThan(first);
      const m = est.evaluate(test);
      expect(m.accuracy).toBeGreaterThan(0.4);
      est.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

  it('an aborted fit stops where it was and says so', async () => {
    const ctl = new AbortController();
    let steps = 0;
    const est = await new NMTune({ epochs: 10 }).fit(train, {
      signal: ctl.signal,
      onStep: () => {
        if (++steps === 6) ctl.abort();
      },
    });
    expect(est.stopped_).toEqual({ reason: 'aborted', epochsDone: 1, steps: 6, totalSteps: 40 });
    expect(est.evaluate(test).rows).toBe(test.rows);
    est.dispose();
  });

  it('same seed, same result; another seed, another result; fraction is stratified', async () => {
    const run = async (seed: number) => {
      const est = await new MlpTuner({ epochs: 2, seed, fraction: 0.5 }).fit(train);
      const z = est.transform(test);
      const rows = est.trainRows_;
      est.dispose();
      return { z, rows };
    };
    const a = await run(3);
    const b = await run(3);
    const c = await run(4);
    expect(a.rows).toBe(250);
    expect(Array.from(a.z.subarray(0, 50))).toEqual(Array.from(b.z.subarray(0, 50)));
    expect(Array.from(a.z.subarray(0, 50))).not.toEqual(Array.from(c.z.subarray(0, 50)));
  });

  it('rejects bad input with messages naming the set', async () => {
    const bad: FeatureSet = { ...train, name: 'bad.npy', labels: train.labels.subarray(0, 10) };
    await expect(new LinearProbe().fit(bad)).rejects.toThrow(/bad\.npy: 10 labels for 500 feature rows/);
    expect(() => new LinearProbe({ epochs: 0 })).toThrow(/epochs: .*>=1/);
  });
});

describe('engines', () => {
  for (const [method, preset] of [['mlp', 'paper'], ['nmtune', 'paper'], ['mlp', 'reference'], ['nmtune', 'reference']] as const)
    it(`${method} (${preset} preset): onnxruntime and tfjs train the same model (same init, same batches)`, async () => {
      const fit = async (engine: 'tfjs' | 'ort') => {
        const est = await makeTuner({ method, epochs: 2, engine, preset, seed: 5 }).fit(train);
        const z = est.transform(test);
        const acc = est.evaluate(test).accuracy;
        expect(est.engine_).toBe(engine);
        est.dispose();
        return { z, acc };
      };
      const a = await fit('tfjs');
      const b = await fit('ort');
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < a.z.length; i++) {
        worst = Math.max(worst, Math.abs(a.z[i] - b.z[i]));
        scale = Math.max(scale, Math.abs(a.z[i]));
      }
      expect(worst / scale).toBeLessThan(1e-3);
      expect(Math.abs(a.acc - b.acc)).toBeLessThanOrEqual(0.004);
    });

  it('engine "ort" refuses shapes it does not implement', async () => {
    await expect(new MlpTuner({ engine: 'ort', hiddenBlocks: 2, epochs: 1 }).fit(train)).rejects.toThrow(/engine "ort" trains the one-block MLP only/);
    const auto = await new MlpTuner({ hiddenBlocks: 2, epochs: 1 }).fit(train);
    expect(auto.engine_).toBe('tfjs');
    auto.dispose();
  });
});
