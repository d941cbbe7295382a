/** AdamW against torch.optim.AdamW trajectories (fixture: test/fixtures/tuning/make_tuning_fixtures.py). */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initTfBackend } from '../../src/core/tf/backend';
import { AdamW, ArrayAdamW, adamwUpdate } from '../../src/core/tuning/adamw';
import { rawFloat32 } from '../../src/core/tf/rawData';

interface AdamCase {
  weightDecay: number;
  p0: number[];
  lrs: number[];
  grads: number[][];
  trajectory: number[][];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/tuning/adamw.json', import.meta.url), 'utf8')) as { cases: AdamCase[] };

beforeAll(async () => {
  await initTfBackend();
});

describe('AdamW matches torch.optim.AdamW', () => {
  const combos = ['wasm', 'cpu'].flatMap((backend) => [true, false].flatMap((fused) => fixture.cases.map((c) => ({ backend, fused, c }))));
  for (const { backend, fused, c } of combos)
    it(`${backend}, ${fused ? 'fused loop' : 'tfjs ops'}: weight decay ${c.weightDecay}, ${c.lrs.length} steps with changing lr`, async () => {
      await tf.setBackend(backend);
      const p = tf.variable(tf.tensor1d(c.p0));
      const opt = new AdamW({ weightDecay: c.weightDecay, fused });
      // the fused loop needs direct memory access, which both backends give
      expect(rawFloat32(p)).not.toBeNull();
      c.lrs.forEach((lr, t) => {
        const g = tf.tensor1d(c.grads[t]);
        opt.step({ p }, { p: g }, lr);
        g.dispose();
        const got = p.dataSync();
        for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - c.trajectory[t][i])).toBeLessThan(1e-6 * Math.max(1, Math.abs(c.trajectory[t][i])));
      });
      expect(opt.steps).toBe(c.lrs.length);
      opt.dispose();
      p.dispose();
    });

  it('leaves variables without a gradient alone and leaks no tensors', async () => {
    await tf.setBackend('wasm');
    const a = tf.variable(tf.tensor1d([1, 2]));
    const b = tf.variable(tf.tensor1d([3, 4]));
    const opt = new AdamW({ weightDecay: 0.1 });
    const g = tf.tensor1d([0.5, -0.5]);
    opt.step({ a, b }, { a: g }, 0.1);
    const before = tf.memory().numTensors;
    opt.step({ a, b }, { a: g }, 0.1);
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(b.dataSync())).toEqual([3, 4]);
    opt.dispose();
    tf.dispose([a, b, g]);
  });

  // The onnxruntime tuners' optimiser: parameters in its own WebAssembly memory, f32x4 kernel.
  for (const c of fixture.cases)
    it(`ArrayAdamW (WebAssembly SIMD kernel): weight decay ${c.weightDecay}, ${c.lrs.length} steps with changing lr`, () => {
      const opt = new ArrayAdamW({ p: Float32Array.from(c.p0), q: Float32Array.from(c.p0, (x) => -x) }, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: c.weightDecay });
      expect(opt.wasm).toBe(true);
      c.lrs.forEach((lr, t) => {
        opt.step({ p: Float32Array.from(c.grads[t]), q: Float32Array.from(c.grads[t], (x) => -x) }, lr);
        for (let i = 0; i < c.p0.length; i++) {
          const tol = 1e-6 * Math.max(1, Math.abs(c.trajectory[t][i]));
          expect(Math.abs(opt.params.p[i] - c.trajectory[t][i])).toBeLessThan(tol);
          // the update is odd in (p, g): the mirrored parameter follows the mirrored path
          expect(Math.abs(opt.params.q[i] + c.trajectory[t][i])).toBeLessThan(tol);
        }
      });
    });

  it('ArrayAdamW equals the JS loop to float32 rounding on 100 000 parameters over 20 steps', () => {
    const n = 100_000;
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    const p0 = Float32Array.from({ length: n }, rand);
    const opt = new ArrayAdamW({ w: p0 }, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 });
    const p = Float32Array.from(p0);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    for (let t = 1; t <= 20; t++) {
      const g = Float32Array.from({ length: n }, rand);
      opt.step({ w: g }, 1e-2 / t);
      adamwUpdate(p, g, m, v, p, 1e-2 / t, t, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 });
    }
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(opt.params.w[i] - p[i]));
    // 20 steps of lr ≤ 0.01 move each parameter ≤ 0.2; float32 carries ~6e-8 of that per step
    expect(worst).toBeLessThan(2e-6);
    expect(worst).toBeGreaterThan(0); // two different arithmetics, not the same code twice
    expect(() => opt.step({ w: new Float32Array(3) }, 0.1)).toThrow(/gradient of "w" missing or of the wrong length/);
  });
});
