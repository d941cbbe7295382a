/**
 * NMLab's wasm convolution-gradient kernels against tfjs's cpu backend (an independent
 * implementation: plain JS loops). Every kernel is run directly and through autodiff, over
 * strides, paddings (same, valid, explicit) and odd sizes, NHWC, dilations 1.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { nmlabWasmKernels, registerWasmKernels, restoreStockWasmKernels } from '../../src/core/tf/kernels';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  strides: [number, number];
  pad: Pad;
}

const CASES: Case[] = [
  { x: [2, 7, 9, 3], k: [3, 3], cout: 4, strides: [1, 1], pad: 'same' },
  { x: [2, 7, 9, 3], k: [3, 3], cout: 4, strides: [2, 2], pad: 'same' },
  { x: [2, 8, 8, 2], k: [3, 3], cout: 5, strides: [2, 2], pad: 'same' },
  { x: [2, 7, 9, 3], k: [3, 3], cout: 4, strides: [1, 1], pad: 'valid' },
  { x: [2, 8, 9, 3], k: [3, 3], cout: 2, strides: [2, 2], pad: 'valid' },
  { x: [1, 10, 7, 2], k: [2, 4], cout: 3, strides: [2, 1], pad: 'same' },
  { x: [2, 6, 6, 4], k: [1, 1], cout: 8, strides: [2, 2], pad: 'valid' },
  { x: [1, 9, 9, 1], k: [5, 5], cout: 3, strides: [3, 3], pad: 'same' },
  { x: [2, 6, 7, 2], k: [3, 3], cout: 3, strides: [1, 2], pad: [[0, 0], [2, 1], [0, 2], [0, 0]] },
];

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

/** Run `f` on a backend and read every output back. */
async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outs = tf.tidy(f);
  const vals = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return vals;
}

function expectClose(actual: Float32Array, expected: Float32Array, tol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
  expect(worst).toBeLessThan(tol);
}

function outShape(c: Case): [number, number, number, number] {
  const info = tf.backend_util.computeConv2DInfo(c.x, [c.k[0], c.k[1], c.x[3], c.cout], c.strides, 1, c.pad);
  return info.outShape as [number, number, number, number];
}

function label(c: Case): string {
  return `x${c.x.join('x')} k${c.k.join('x')} s${c.strides.join(',')} ${typeof c.pad === 'string' ? c.pad : JSON.stringify(c.pad)}`;
}

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  registerWasmKernels();
});

describe('registerWasmKernels', () => {
  it('adds the missing gradients and replaces the slow backprop-input kernel', () => {
    expect(nmlabWasmKernels()).toEqual(['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']);
    // A second call is a no-op.
    expect(registerWasmKernels()).toEqual({ added: [], replaced: [] });
  });
});

describe('Conv2D gradient kernels on wasm match cpu', () => {
  for (const c of CASES) {
    it(`Conv2DBackpropFilter ${label(c)}`, async () => {
      const filterShape: [number, number, number, number] = [c.k[0], c.k[1], c.x[3], c.cout];
      const f = (): tf.Tensor[] => [tf.engine().runKernel('Conv2DBackpropFilter', { x: rand(c.x, 1), dy: rand(outShape(c), 2) }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape } as never) as tf.Tensor];
      const [want] = await on('cpu', f);
      const [got] = await on('wasm', f);
      expectClose(got, want);
    });
    it(`Conv2DBackpropInput ${label(c)}`, async () => {
      const f = (): tf.Tensor[] => [tf.conv2dTranspose(rand(outShape(c), 3) as tf.Tensor4D, rand([c.k[0], c.k[1], c.x[3], c.cout], 4) as tf.Tensor4D, c.x, c.strides, c.pad as 'same')];
      const [want] = await on('cpu', f);
      const [got] = await on('wasm', f);
      expectClose(got, want);
    });
    it(`autodiff of conv2d ${label(c)}`, async () => {
      const f = (): tf.Tensor[] => {
        const x = rand(c.x, 5) as tf.Tensor4D;
        const w = rand([c.k[0], c.k[1], c.x[3], c.cout], 6) as tf.Tensor4D;
        const r = rand(outShape(c), 7);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad), r)));
        return g([x, w]);
      };
      const want = await on('cpu', f);
      const got = await on('wasm', f);
      expectClose(got[0], want[0]);
      expectClose(got[1], want[1]);
    });
  }

  it('stock wasm Conv2DBackpropInput and the replacement agree', async () => {
    const c = CASES[2];
    const f = (): tf.Tensor[] => [tf.conv2dTranspose(rand(outShape(c), 3) as tf.Tensor4D, rand([c.k[0], c.k[1], c.x[3], c.cout], 4) as tf.Tensor4D, c.x, c.strides, 'same')];
    const ours = await on('wasm', f);
    restoreStockWasmKernels();
    try {
      const stock = await on('wasm', f);
      expectClose(ours[0], stock[0]);
    } finally {
      registerWasmKernels();
    }
  });

  it('leaks no wasm memory', async () => {
    await tf.setBackend('wasm');
    const c = CASES[4];
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = rand(c.x, 1) as tf.Tensor4D;
    const w = rand([c.k[0], c.k[1], c.x[3], c.cout], 2) as tf.Tensor4D;
    const before = backend.numDataIds();
    for (let i = 0; i < 3; i++) {
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad))))([x, w]);
      tf.dispose([dx, dw]);
    }
    expect(backend.numDataIds()).toBe(before);
    tf.dispose([x, w]);
  });
});

describe('depthwise gradient kernels on wasm match cpu', () => {
  const DW: Array<{ x: [number, number, number, number]; k: [number, number]; m: number; strides: [number, number]; pad: 'same' | 'valid' }> = [
    { x: [2, 7, 8, 3], k: [3, 3], m: 1, strides: [1, 1], pad: 'same' },
    { x: [2, 7, 8, 3], k: [3, 3], m: 2, strides: [2, 2], pad: 'same' },
    { x: [1, 9, 7, 2], k: [3, 2], m: 3, strides: [1, 1], pad: 'valid' },
    { x: [2, 8, 8, 4], k: [5, 5], m: 1, strides: [2, 2], pad: 'valid' },
  ];
  for (const c of DW) {
    it(`depthwiseConv2d grads x${c.x.join('x')} k${c.k.join('x')} m${c.m} s${c.strides.join(',')} ${c.pad}`, async () => {
      const f = (): tf.Tensor[] => {
        const x = rand(c.x, 8) as tf.Tensor4D;
        const w = rand([c.k[0], c.k[1], c.x[3], c.m], 9) as tf.Tensor4D;
        const y = tf.depthwiseConv2d(x, w, c.strides, c.pad);
        const r = rand(y.shape, 10);
        return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad), r)))([x, w]);
      };
      const want = await on('cpu', f);
      const got = await on('wasm', f);
      expectClose(got[0], want[0]);
      expectClose(got[1], want[1]);
    });
  }
});
