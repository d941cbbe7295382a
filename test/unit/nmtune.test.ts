/**
 * NMTune's loss terms (paper eq. 4–7) against PyTorch on fixed batches and weights, both
 * presets; parameter gradients of the total loss against autograd; the SVD term's custom
 * gradient against autograd through torch.linalg.svdvals and against finite differences.
 * Fixture: test/fixtures/tuning/make_tuning_fixtures.py.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../src/core/tf/backend';
import { Mlp, type BatchStats } from '../../src/core/tuning/mlp';
import { objective } from '../../src/core/tuning/objective';
import { svdTerm, svdTermValueAndGrad } from '../../src/core/tuning/losses';
import { PRESET_TERMS } from '../../src/shared/contract/tuning';
import { Rng } from '../../src/core/tuning/rng';
import { expectTermsClose } from './objectiveTerms';
import { OrtMlpStep, MLP_PARAM_NAMES, type MlpArrays } from '../../src/core/tuning/ortStep';

interface PresetRef {
  ce: number;
  mse: number;
  cov: number;
  svd: number;
  total: number;
  z: number[];
  svdGradZ: number[];
  singularValues: number[];
  grads: Record<string, number[]>;
  runningMean: number[];
  runningVar: number[];
}
interface Case {
  m: number;
  d: number;
  c: number;
  ratio: number;
  x: number[];
  weak: number[];
  y: number[];
  weights: Record<string, number[]>;
  presets: { paper: PresetRef };
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/tuning/nmtune_terms.json', import.meta.url), 'utf8')) as { cases: Case[] };

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, relTol: number, floor = 1e-12): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(floor, maxAbs(want));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst / scale).toBeLessThan(relTol);
}

function build(c: Case): { mlp: Mlp; head: { w: tf.Variable; b: tf.Variable } } {
  const mlp = new Mlp({ dim: c.d, ratio: c.ratio, hiddenBlocks: 1, residual: false }, new Rng(1));
  for (const [k, v] of Object.entries(mlp.vars)) v.assign(tf.tensor(c.weights[k], v.shape));
  const head = {
    w: tf.variable(tf.tensor2d(c.weights['head.weight'], [c.d, c.c])),
    b: tf.variable(tf.tensor1d(c.weights['head.bias'])),
  };
  return { mlp, head };
}

beforeAll(async () => {
  await initTfBackend();
});

describe('NMTune loss terms vs PyTorch', () => {
  for (const [ci, c] of fixture.cases.entries())
    for (const preset of ['paper'] as const) {
      const ref = c.presets[preset];
      it(`case ${ci} (${c.m}×${c.d}), ${preset}: CE, MSE, COV, SVD, total to 1e-5`, () => {
        const { mlp, head } = build(c);
        const x = tf.tensor2d(c.x, [c.m, c.d]);
        const labels = tf.tensor1d(c.y, 'int32');
        const stats: BatchStats[] = [];
        expectTermsClose({ mlp, head, x, labels, preset, terms: PRESET_TERMS[preset], stats }, ref);
        // BatchNorm running statistics after one training batch (torch momentum 0.1, unbiased var)
        mlp.updateRunningStats(stats);
        expectClose(mlp.running[0].mean.dataSync(), ref.runningMean, 1e-5);
        expectClose(mlp.running[0].variance.dataSync(), ref.runningVar, 1e-5);
        tf.dispose([x, labels, head.w, head.b]);
        mlp.dispose();
      });

      it(`case ${ci}, ${preset}: parameter gradients of the total match autograd`, () => {
        const { mlp, head } = build(c);
        const x = tf.tensor2d(c.x, [c.m, c.d]);
        const labels = tf.tensor1d(c.y, 'int32');
        const vars: Record<string, tf.Variable> = { ...mlp.vars, 'head.weight': head.w, 'head.bias': head.b };
        const stats: BatchStats[] = [];
        const { value, grads } = tf.variableGrads(() => objective({ mlp, head, x, labels, preset, terms: PRESET_TERMS[preset], stats }).total, Object.values(vars));
        // The bias before BatchNorm has an exactly-zero true gradient (BN removes the mean):
        // compare against the largest gradient of all parameters, not of that one tensor.
        const floor = Math.max(...Object.values(ref.grads).map(maxAbs));
        for (const [k, v] of Object.entries(vars)) expectClose(grads[v.name].dataSync(), ref.grads[k], 2e-4, floor);
        for (const s of stats) tf.dispose([s.mean, s.variance]);
        tf.dispose([value, ...Object.values(grads), x, labels, head.w, head.b]);
        mlp.dispose();
      });

      it(`case ${ci}, ${preset}: SVD term value, singular values and ∂/∂Z match torch (float64)`, () => {
        const z = Float64Array.from(ref.z);
        const k = PRESET_TERMS[preset].svdTopK;
        const r = svdTermValueAndGrad(z, c.m, c.d, k);
        expect(Math.abs(r.value - ref.svd)).toBeLessThan(1e-12);
        expectClose(r.singularValues, ref.singularValues, 1e-12);
        expectClose(r.grad, ref.svdGradZ, 1e-9);
      });
    }
});

function randomMatrix(rows: number, cols: number, seed: number, rank?: number): Float64Array {
  const rng = new Rng(seed);
  const z = new Float64Array(rows * cols);
  if (rank === undefined) {
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    return z;
  }
  const a = Array.from({ length: rows * rank }, () => rng.normal());
  const b = Array.from({ length: rank * cols }, () => rng.normal());
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) for (let t = 0; t < rank; t++) z[i * cols + j] += a[i * rank + t] * b[t * cols + j];
  return z;
}

describe('SVD-term custom gradient vs finite differences', () => {
  const shapes: Array<[number, number, number, undefined]> = [
    [8, 20, 1, undefined], // M < D: Gram ZZᵀ
    [8, 20, 5, undefined],
    [20, 6, 1, undefined], // M > D: Gram ZᵀZ
    [20, 6, 5, undefined],
    [7, 7, 2, undefined], // square
  ];
  for (const [m, d, k] of shapes)
    it(`${m}×${d}, top-${k}`, () => {
      const z = randomMatrix(m, d, m * 100 + d + k);
      const { grad } = svdTermValueAndGrad(z, m, d, k);
      const h = 1e-6;
      const f = (zz: Float64Array) => svdTermValueAndGrad(zz, m, d, k).value;
      const scale = maxAbs(grad);
      expect(scale).toBeGreaterThan(0);
      for (let i = 0; i < z.length; i += 3) {
        const zp = Float64Array.from(z);
        const zm = Float64Array.from(z);
        zp[i] += h;
        zm[i] -= h;
        const fd = (f(zp) - f(zm)) / (2 * h);
        expect(Math.abs(fd - grad[i])).toBeLessThan(1e-6 * scale);
      }
    });

  it('rank-deficient Z: directional derivative along (I + hA)Z, which keeps the rank', () => {
    const [m, d, k, rank] = [10, 12, 3, 6];
    const z = randomMatrix(m, d, 42, rank);
    const a = randomMatrix(m, m, 43);
    const az = new Float64Array(m * d);
    for (let i = 0; i < m; i++) for (let t = 0; t < m; t++) for (let j = 0; j < d; j++) az[i * d + j] += a[i * m + t] * z[t * d + j];
    const { grad, singularValues } = svdTermValueAndGrad(z, m, d, k);
    expect(singularValues[rank]).toBeLessThan(1e-6 * singularValues[0]);
    const h = 1e-6;
    const at = (s: number) => svdTermValueAndGrad(z.map((v, i) => v + s * az[i]), m, d, k).value;
    const fd = (at(h) - at(-h)) / (2 * h);
    let analytic = 0;
    for (let i = 0; i < z.length; i++) analytic += grad[i] * az[i];
    expect(Math.abs(analytic)).toBeGreaterThan(1e-4);
    expect(Math.abs(fd - analytic)).toBeLessThan(1e-6 * Math.abs(analytic) + 1e-8);
  });

  it('the tfjs op returns the float64 gradient (float32 precision)', () => {
    const [m, d] = [6, 10];
    const z64 = randomMatrix(m, d, 5);
    const z = tf.tensor2d(Float32Array.from(z64), [m, d]);
    const g = tf.grad((x: tf.Tensor) => svdTerm(x as tf.Tensor2D, 5))(z);
    const want = svdTermValueAndGrad(Float32Array.from(z64), m, d, 5).grad;
    expectClose(g.dataSync(), want, 1e-6);
    tf.dispose([z, g]);
  });
});

describe('onnxruntime training step (hand-written backward) vs PyTorch autograd', () => {
  for (const [ci, c] of fixture.cases.entries())
    for (const preset of ['mlp', 'paper'] as const) {
      it(`case ${ci} (${c.m}×${c.d}), ${preset}`, async () => {
        const ref = c.presets.paper;
        const step = await OrtMlpStep.create(preset !== 'mlp', 1);
        const p = {} as MlpArrays;
        for (const k of MLP_PARAM_NAMES) p[k] = Float32Array.from(c.weights[k]);
        const x = Float32Array.from(c.x);
        const onehot = new Float32Array(c.m * c.c);
        c.y.forEach((y, i) => (onehot[i * c.c + y] = 1));
        const r = await step.run(p, x, onehot, c.m, preset === 'mlp' ? null : PRESET_TERMS[preset]);
        const close = (g: number, w: number) => expect(Math.abs(g - w)).toBeLessThan(1e-5 * Math.max(1, Math.abs(w)));
        close(r.ce, ref.ce);
        if (preset !== 'mlp') {
          close(r.mse!, ref.mse);
          close(r.cov!, ref.cov);
          close(r.svd!, ref.svd);
          close(r.total, ref.total);
          const floor = Math.max(...Object.values(ref.grads).map(maxAbs));
          for (const k of MLP_PARAM_NAMES) expectClose(r.grads[k], ref.grads[k], 2e-4, floor);
        } else {
          // CE-only gradients: the head's gradient does not depend on the NMTune terms
          expectClose(r.grads['head.weight'], mlpHeadGrad(c), 1e-4);
        }
        await step.dispose();
      });
    }

  it('writes the gradients into buffers the caller gives (the optimiser memory), the same values as PyTorch', async () => {
    const c = fixture.cases[0];
    const ref = c.presets.paper;
    const step = await OrtMlpStep.create(true, 1);
    const p = {} as MlpArrays;
    for (const k of MLP_PARAM_NAMES) p[k] = Float32Array.from(c.weights[k]);
    // views at offsets inside one shared buffer, as ArrayAdamW hands them out
    const total = MLP_PARAM_NAMES.reduce((n, k) => n + p[k].length, 0);
    const shared = new Float32Array(total + 3).fill(NaN);
    const into = {} as MlpArrays;
    let at = 3;
    for (const k of MLP_PARAM_NAMES) {
      into[k] = shared.subarray(at, at + p[k].length);
      at += p[k].length;
    }
    const onehot = new Float32Array(c.m * c.c);
    c.y.forEach((y, i) => (onehot[i * c.c + y] = 1));
    const r = await step.run(p, Float32Array.from(c.x), onehot, c.m, PRESET_TERMS.paper, 'paper', into);
    const floor = Math.max(...Object.values(ref.grads).map(maxAbs));
    for (const k of MLP_PARAM_NAMES) {
      expect(r.grads[k]).toBe(into[k]);
      expectClose(into[k], ref.grads[k], 2e-4, floor);
    }
    expect(shared.subarray(0, 3).every(Number.isNaN)).toBe(true); // nothing written outside the views
    await expect(step.run(p, Float32Array.from(c.x), onehot, c.m, PRESET_TERMS.paper, 'paper', { 'head.bias': new Float32Array(1) })).rejects.toThrow(/buffer for the gradient of "head.bias" holds 1 values/);
    await step.dispose();
  });
});

/** ∂CE/∂Wₕ = Zᵀ(softmax − onehot)/M from the fixture's Z (float64, independent of the graph). */
function mlpHeadGrad(c: Case): number[] {
  const z = c.presets.paper.z;
  const w = c.weights['head.weight'];
  const b = c.weights['head.bias'];
  const g = new Array<number>(c.d * c.c).fill(0);
  for (let i = 0; i < c.m; i++) {
    const logits = Array.from({ length: c.c }, (_, k) => b[k] + Array.from({ length: c.d }, (_, j) => z[i * c.d + j] * w[j * c.c + k]).reduce((s, v) => s + v, 0));
    const mx = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - mx));
    const sum = e.reduce((s, v) => s + v, 0);
    for (let k = 0; k < c.c; k++) {
      const d = e[k] / sum - (c.y[i] === k ? 1 : 0);
      for (let j = 0; j < c.d; j++) g[j * c.c + k] += (z[i * c.d + j] * d) / c.m;
    }
  }
  return g;
}
