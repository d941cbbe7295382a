/** AdamW against torch.optim.AdamW trajectories (fixture: test/fixtures/tuning/make_tuning_fixtures.py). */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initTfBackend } from '../../src/core/tf/backend';
import { AdamW } from '../../src/core/tuning/adamw';
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
});
