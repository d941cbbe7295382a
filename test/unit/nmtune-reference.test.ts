/**
 * The `reference` preset against a PyTorch script that follows the authors' nml_tune.py and
 * modeling.py line by line (test/fixtures/tuning/make_reference_fixture.py): loss terms, the
 * gradients of one step, the parameters after one AdamW step and BatchNorm's running
 * statistics, to 1e-5; and the preset's defaults and head initialisation.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../src/core/tf/backend';
import { Mlp, kaimingHeadInit, type BatchStats } from '../../src/core/tuning/mlp';
import { objective } from '../../src/core/tuning/objective';
import { AdamW, adamwUpdate } from '../../src/core/tuning/adamw';
import { OrtMlpStep, mlpParamNames, type MlpArrays } from '../../src/core/tuning/ortStep';
import { PRESET_TERMS, tuneDefaults } from '../../src/shared/contract/tuning';
import { Rng } from '../../src/core/tuning/rng';
import { expectTermsClose } from './objectiveTerms';
import type { TuneTerms } from '../../src/shared/contract/tuning';

interface Case {
  b: number;
  d: number;
  c: number;
  weak: number[];
  strong: number[];
  y: number[];
  weights: Record<string, number[]>;
  ce: number;
  mse: number;
  cov: number;
  svd: number;
  total: number;
  mseRowSum: number;
  grads: Record<string, number[]>;
  after: Record<string, number[]>;
  runningMean: number[];
  runningVar: number[];
  lr: number;
  weightDecay: number;
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/tuning/nmtune_reference.json', import.meta.url), 'utf8')) as { weights: TuneTerms; cases: Case[] };

function worstAbs(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]));
  return w;
}

/** The fixture's model and batch: x = cat([weak, strong]), labels repeated (nml_tune.py). */
function build(c: Case) {
  const mlp = new Mlp({ dim: c.d, ratio: 4, hiddenBlocks: 1, residual: true }, new Rng(1));
  for (const [k, v] of Object.entries(mlp.vars)) v.assign(tf.tensor(c.weights[k], v.shape));
  const head = { w: tf.variable(tf.tensor2d(c.weights['head.weight'], [c.d, c.c])), b: tf.variable(tf.tensor1d(c.weights['head.bias'])) };
  const x = tf.tensor2d([...c.weak, ...c.strong], [2 * c.b, c.d]);
  const labels = tf.tensor1d([...c.y, ...c.y], 'int32');
  const vars: Record<string, tf.Variable> = { ...mlp.vars, 'head.weight': head.w, 'head.bias': head.b };
  const dispose = () => {
    tf.dispose([head.w, head.b, x, labels]);
    mlp.dispose();
  };
  return { mlp, head, x, labels, vars, dispose };
}

beforeAll(async () => {
  await initTfBackend();
});

describe('reference preset vs the authors’ code (PyTorch)', () => {
  it('uses the authors’ weights and README defaults', () => {
    expect(PRESET_TERMS.reference).toEqual(fixture.weights);
    expect(tuneDefaults('nmtune', 'reference')).toMatchObject({ epochs: 30, lr: 0.001, weightDecay: 1e-4, batchSize: 64, mlpRatio: 4, hiddenBlocks: 1, residual: true, residualScaleInit: 1, headInit: 'kaiming-zero' });
  });

  for (const [ci, c] of fixture.cases.entries()) {
    it(`case ${ci} (B = ${c.b}, D = ${c.d}): CE, MSE, COV, SVD and total on both views equal torch to 1e-5`, () => {
      const m = build(c);
      expectTermsClose({ mlp: m.mlp, head: m.head, x: m.x, labels: m.labels, preset: 'reference', terms: fixture.weights, stats: [] }, c);
      m.dispose();
    });

    it(`case ${ci}: L_MSE is nn.MSELoss()'s element mean, not the per-row sum (D× larger)`, () => {
      const m = build(c);
      const mse = tf.tidy(() => objective({ mlp: m.mlp, head: m.head, x: m.x, labels: m.labels, preset: 'reference', terms: fixture.weights, stats: [] }).mse!);
      const got = mse.dataSync()[0];
      expect(Math.abs(c.mseRowSum - c.d * c.mse)).toBeLessThan(1e-9);
      expect(Math.abs(got - c.mse)).toBeLessThan(1e-5 * c.mse);
      expect(Math.abs(got - c.mseRowSum)).toBeGreaterThan(0.5 * c.mseRowSum);
      mse.dispose();
      m.dispose();
    });

    it(`case ${ci}: one training step (gradients, AdamW update, BatchNorm running stats) equals torch to 1e-5`, () => {
      const m = build(c);
      const stats: BatchStats[] = [];
      const { value, grads } = tf.variableGrads(() => objective({ mlp: m.mlp, head: m.head, x: m.x, labels: m.labels, preset: 'reference', terms: fixture.weights, stats }).total, Object.values(m.vars));
      const named: Record<string, tf.Tensor> = {};
      // Gradients: relative to the largest gradient of all parameters (the bias before
      // BatchNorm has an exactly-zero true gradient).
      let scale = 0;
      for (const g of Object.values(c.grads)) for (const v of g) scale = Math.max(scale, Math.abs(v));
      for (const [k, v] of Object.entries(m.vars)) {
        named[k] = grads[v.name];
        expect(worstAbs(grads[v.name].dataSync(), c.grads[k]) / scale).toBeLessThan(1e-5);
      }
      const opt = new AdamW({ weightDecay: c.weightDecay });
      opt.step(m.vars, named, c.lr);
      // The bias before BatchNorm has a true gradient of exactly 0 (BN removes it; torch gets
      // ~1e-17 in float64, float32 ~1e-9), and Adam's first step, lr·g/(|g| + ε), turns either
      // into an arbitrary fraction of lr. It cannot change any output, so it is left out.
      for (const [k, v] of Object.entries(m.vars)) if (k !== 'block0.bias') expect(worstAbs(v.dataSync(), c.after[k])).toBeLessThan(1e-5);
      m.mlp.updateRunningStats(stats);
      expect(worstAbs(m.mlp.running[0].mean.dataSync(), c.runningMean)).toBeLessThan(1e-5);
      expect(worstAbs(m.mlp.running[0].variance.dataSync(), c.runningVar) / Math.max(...c.runningVar)).toBeLessThan(1e-5);
      opt.dispose();
      tf.dispose([value, ...Object.values(grads)]);
      m.dispose();
    });
  }

  for (const [ci, c] of fixture.cases.entries())
    it(`case ${ci}: the onnxruntime step (hand-written backward, residual, row-weighted MSE) equals torch to 1e-5`, async () => {
      const step = await OrtMlpStep.create(true, 1, true);
      const p = {} as MlpArrays;
      for (const k of mlpParamNames(true)) p[k] = Float32Array.from(c.weights[k]);
      const onehot = new Float32Array(2 * c.b * c.c);
      [...c.y, ...c.y].forEach((y, i) => (onehot[i * c.c + y] = 1));
      const r = await step.run(p, Float32Array.from([...c.weak, ...c.strong]), onehot, 2 * c.b, fixture.weights, 'reference');
      const close = (g: number, w: number) => expect(Math.abs(g - w)).toBeLessThan(1e-5 * Math.max(1, Math.abs(w)));
      close(r.ce, c.ce);
      close(r.mse!, c.mse);
      close(r.cov!, c.cov);
      close(r.svd!, c.svd);
      close(r.total, c.total);
      let scale = 0;
      for (const g of Object.values(c.grads)) for (const v of g) scale = Math.max(scale, Math.abs(v));
      const adam = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: c.weightDecay };
      for (const k of mlpParamNames(true)) {
        expect(worstAbs(r.grads[k]!, c.grads[k]) / scale).toBeLessThan(1e-5);
        adamwUpdate(p[k]!, r.grads[k]!, new Float32Array(p[k]!.length), new Float32Array(p[k]!.length), p[k]!, c.lr, 1, adam);
        // block0.bias: see the tfjs step above
        if (k !== 'block0.bias') expect(worstAbs(p[k]!, c.after[k])).toBeLessThan(1e-5);
      }
      await step.dispose();
    });

  it('head: kaiming_uniform (a = 0, fan_in = D: U(±√(6/D))) with zero bias', () => {
    const d = 64;
    const { w, b } = kaimingHeadInit(new Rng(3), d, 10);
    const wv = w.dataSync();
    const bound = Math.sqrt(6 / d);
    let max = 0;
    let sq = 0;
    for (const v of wv) {
      max = Math.max(max, Math.abs(v));
      sq += v * v;
    }
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(0.97 * bound);
    // variance of U(±a) is a²/3 = 2/D (He): 640 draws, within 15 %
    expect(Math.abs(sq / wv.length / (2 / d) - 1)).toBeLessThan(0.15);
    expect(Array.from(b.dataSync())).toEqual(new Array(10).fill(0));
    tf.dispose([w, b]);
  });
});
