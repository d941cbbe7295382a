/**
 * The wasm transpose-first matMul override must give the cpu backend's products for every
 * flag combination and batch shape, including broadcasting batches and fused bias/activation.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { installWasmMatMulFix, uninstallWasmMatMulFix, wasmMatMulFixActive } from '../../src/core/tf/wasmMatMul';

function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

type Case = { aShape: number[]; bShape: number[]; ta: boolean; tb: boolean };

function cases(): Case[] {
  const out: Case[] = [];
  const [m, k, n] = [7, 5, 3];
  // batch prefixes for a and b: plain 2-D, batch 1, batch 3, broadcast of 1 against 3, rank 4
  const batches: Array<[number[], number[]]> = [[[], []], [[1], [1]], [[3], [3]], [[1], [3]], [[3], [1]], [[2, 3], [2, 3]]];
  for (const [ba, bb] of batches)
    for (const ta of [false, true])
      for (const tb of [false, true])
        out.push({ aShape: [...ba, ...(ta ? [k, m] : [m, k])], bShape: [...bb, ...(tb ? [n, k] : [k, n])], ta, tb });
  return out;
}

async function run(backend: string, c: Case, fused: boolean): Promise<{ shape: number[]; data: Float32Array }> {
  await tf.setBackend(backend);
  const a = tf.tensor(rand(size(c.aShape), 1), c.aShape);
  const b = tf.tensor(rand(size(c.bShape), 2), c.bShape);
  const n = c.tb ? c.bShape[c.bShape.length - 2] : c.bShape[c.bShape.length - 1];
  const bias = tf.tensor1d(rand(n, 3));
  const y = fused
    ? tf.fused.matMul({ a, b, transposeA: c.ta, transposeB: c.tb, bias, activation: 'relu' })
    : tf.matMul(a, b, c.ta, c.tb);
  const data = (await y.data()) as Float32Array;
  const shape = y.shape;
  tf.dispose([a, b, bias, y]);
  return { shape, data };
}

describe('wasm matMul transpose-first override', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    expect(installWasmMatMulFix()).toBe(true);
  });
  afterAll(() => uninstallWasmMatMulFix());

  it('is installed on the wasm backend', () => {
    expect(wasmMatMulFixActive()).toBe(true);
  });

  for (const fused of [false, true])
    for (const c of cases()) {
      const label = `${fused ? 'fused ' : ''}a${JSON.stringify(c.aShape)}${c.ta ? 'ᵀ' : ''} · b${JSON.stringify(c.bShape)}${c.tb ? 'ᵀ' : ''}`;
      it(label, async () => {
        const want = await run('cpu', c, fused);
        const got = await run('wasm', c, fused);
        expect(got.shape).toEqual(want.shape);
        for (let i = 0; i < want.data.length; i++) expect(got.data[i]).toBeCloseTo(want.data[i], 5);
      });
    }

  it('leaks no tensors or wasm buffers', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const bytesBefore = tf.memory().numBytes;
    const a = tf.tensor(rand(6 * 4, 5), [6, 4]);
    const b = tf.tensor(rand(6 * 2, 6), [6, 2]);
    const y = tf.matMul(a, b, true, false);
    await y.data();
    tf.dispose([a, b, y]);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytesBefore);
  });

  it('gives the cpu gradients of a dense layer', async () => {
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      const x = tf.tensor2d(rand(8 * 6, 7), [8, 6]);
      const w = tf.tensor2d(rand(6 * 4, 8), [6, 4]);
      const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.square(tf.matMul(xx, ww))));
      const [gx, gw] = g([x, w]);
      const out = [(await gx.data()) as Float32Array, (await gw.data()) as Float32Array];
      tf.dispose([x, w, gx, gw]);
      return out;
    };
    const want = await grads('cpu');
    const got = await grads('wasm');
    for (let j = 0; j < 2; j++) for (let i = 0; i < want[j].length; i++) expect(got[j][i]).toBeCloseTo(want[j][i], 5);
  });
});
