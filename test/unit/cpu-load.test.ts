/**
 * Other processes' CPU use (src/core/onnx/cpuLoad.ts), which decides whether ORT's intra-op
 * workers spin, and the trainer re-deciding it as a run goes on (src/core/onnx/autodiff/trainer.ts).
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { cpuSnapshot, othersCores, oversubscribed } from '../../src/core/onnx/cpuLoad';
import { buildTrainingGraph } from '../../src/core/onnx/autodiff';
import { OnnxTrainer } from '../../src/core/onnx/autodiff/trainer';
import { valueInfo, type ModelSpec } from '../../src/core/onnx/builder';

describe('CPU use of other processes', () => {
  it('is the cores\' busy time less this process\'s own, per wall time', () => {
    const a = { at: 1000, busyMs: 5000, ownMs: 200 };
    expect(othersCores(a, { at: 2000, busyMs: 6500, ownMs: 700 })).toBeCloseTo(1.0, 12);
    expect(othersCores(a, { at: 1500, busyMs: 5900, ownMs: 300 })).toBeCloseTo(1.6, 12);
    // Tick rounding can make own time exceed the cores' busy time: never below 0.
    expect(othersCores(a, { at: 1200, busyMs: 5010, ownMs: 230 })).toBe(0);
    expect(othersCores(a, a)).toBe(0);
  });

  it('leaves this process\'s own threads out, and sees another process busy', async () => {
    // This process busy for 300 ms: its own CPU time grows by about that.
    const s0 = cpuSnapshot();
    while (performance.now() - s0.at < 300);
    const s1 = cpuSnapshot();
    expect(s1.ownMs - s0.ownMs).toBeGreaterThan(0.6 * (s1.at - s0.at));
    // A child process spinning one core while this one sleeps counts as another's use. (Other
    // test files running meanwhile only add to it: a lower bound is all that can be asserted.)
    const child = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 1500);']);
    await sleep(200);
    const a = cpuSnapshot();
    await sleep(1000);
    const b = cpuSnapshot();
    await new Promise((done) => child.on('exit', done));
    expect(othersCores(a, b)).toBeGreaterThan(0.5);
  });

  it('says a run is oversubscribed when others\' use and its threads exceed the cores by half a core', () => {
    expect(oversubscribed(0.2, 2, 2)).toBe(false);
    expect(oversubscribed(0.6, 2, 2)).toBe(true);
    expect(oversubscribed(1.0, 1, 2)).toBe(false);
    expect(oversubscribed(7.4, 8, 16)).toBe(false);
    expect(oversubscribed(8.5, 8, 16)).toBe(true);
  });
});

/** logits = x·W + b on 4 features, 3 classes: a graph small enough to train in a test. */
function linearModel(batch: number): ModelSpec {
  return {
    opsetVersion: 17,
    graph: {
      name: 'linear',
      inputs: [valueInfo('x', 'float32', [batch, 4])],
      outputs: [valueInfo('logits', 'float32', [batch, 3])],
      initializers: [
        { name: 'W', dataType: 'float32', dims: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i + 1) / 2) },
        { name: 'b', dataType: 'float32', dims: [3], data: Float32Array.of(0.1, -0.2, 0.05) },
      ],
      nodes: [{ opType: 'Gemm', inputs: ['x', 'W', 'b'], outputs: ['logits'] }],
    },
  };
}

describe('a trainer re-decides spinning from the load', () => {
  it('replaces its session after two looks that disagree, and the steps go on where they were', async () => {
    const batch = 8;
    const graph = buildTrainingGraph(linearModel(batch), { batchSize: batch, loss: { kind: 'softmax-ce' }, optimizer: { kind: 'adamw', weightDecay: 0.01 } });
    const x = Float32Array.from({ length: batch * 4 }, (_, i) => Math.cos(0.7 * i));
    const y = Array.from({ length: batch }, (_, i) => i % 3);
    const steady = await OnnxTrainer.create(graph, { threads: 2, executionProviders: ['cpu'] });
    const moved = await OnnxTrainer.create(graph, { threads: 2, executionProviders: ['cpu'] });
    try {
      const first = moved.spinning;
      const losses: [number, number][] = [];
      const step = async (): Promise<void> => {
        losses.push([(await steady.step(x, y, 0.05)).loss, (await moved.step(x, y, 0.05)).loss]);
      };
      await step();
      // Others using 10 cores (or none): one look changes nothing, the second does.
      const load = first ? 10 : 0;
      await moved.lookAtLoad(load);
      expect(moved.spinning).toBe(first);
      await step();
      await moved.lookAtLoad(load);
      expect(moved.spinning).toBe(!first);
      await step();
      // A look that agrees resets the count: disagree, agree, disagree changes nothing.
      await moved.lookAtLoad(first ? 0 : 10);
      await moved.lookAtLoad(load);
      await moved.lookAtLoad(first ? 0 : 10);
      expect(moved.spinning).toBe(!first);
      await step();
      expect(moved.steps).toBe(4);
      // The optimiser state carried over: the same losses as the trainer that kept its session.
      for (const [a, b] of losses) expect(Math.abs(a - b)).toBeLessThan(1e-6 * Math.max(1, Math.abs(a)));
      expect(losses[3][0]).toBeLessThan(losses[0][0]);
      const [ws, wm] = [steady.weights(), moved.weights()];
      for (const name of ['W', 'b']) for (let i = 0; i < ws[name].length; i++) expect(Math.abs(wm[name][i] - ws[name][i])).toBeLessThan(1e-6);
      // Released while a replacement is being made: release waits for it, and both settle.
      await moved.lookAtLoad(first ? 0 : 10);
      const swap = moved.lookAtLoad(first ? 0 : 10);
      await expect(Promise.all([swap, moved.release()])).resolves.toBeDefined();
      expect(moved.spinning).toBe(first);
    } finally {
      await steady.release();
    }
  });
});
