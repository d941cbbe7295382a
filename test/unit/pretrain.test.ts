/**
 * NMLab's CNN pre-training (src/core/pretrain): one training step against PyTorch (fixture
 * made by test/fixtures/pretrain/make_cnn_grads.py: features, loss, every gradient and the
 * BatchNorm running statistics), then the training loop's seeding, abort and learning.
 * The same step on onnxruntime: the exported graph (src/core/pretrain/onnx.ts) differentiated
 * by src/core/onnx/autodiff, with its in-graph AdamW checked against tuning/adamw.ts'
 * adamwUpdate (itself checked against torch in adamw.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../src/core/tf/backend';
import { ensureGradients } from '../../src/core/tf/gradients';
import { CnnModel, cnnLayout, type BnBatchStats, type CnnSpec } from '../../src/core/pretrain/cnn';
import { accuracyOf, predictCnn, pretrainCnn, pretrainLoss, type ImageSet } from '../../src/core/pretrain/train';
import { readIdxPair } from '../../src/core/datasets/idx';
import { buildTrainingGraph } from '../../src/core/onnx/autodiff';
import { OnnxTrainer } from '../../src/core/onnx/autodiff/trainer';
import { cnnModelSpec, CNN_FEATURE_NAME } from '../../src/core/pretrain/onnx';
import { adamwUpdate } from '../../src/core/tuning/adamw';

interface Fixture {
  spec: CnnSpec;
  labelSmoothing: number;
  n: number;
  weights: Record<string, { shape: number[]; data: number[] }>;
  input: { shape: number[]; data: number[] };
  labels: number[];
  features: number[];
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
  running: Record<string, { mean: number[]; var: number[] }>;
}

const fx = JSON.parse(readFileSync(join(__dirname, '../fixtures/pretrain/cnn_grads.json'), 'utf8')) as Fixture;

/** torch OIHW → tfjs HWIO. */
function oihwToHwio(data: number[], [o, i, h, w]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = data[((a * i + b) * h + y) * w + x];
  return out;
}

function toModelLayout(name: string, data: number[], shape: number[]): Float32Array {
  return shape.length === 4 ? oihwToHwio(data, shape) : Float32Array.from(data);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
  expect(worst, what).toBeLessThan(tol);
}

beforeAll(async () => {
  process.env.NMLAB_TF_BACKEND = 'wasm';
  await initTfBackend();
  await ensureGradients();
});

describe('CNN training step against PyTorch', () => {
  it('layout names match the fixture', () => {
    const layout = cnnLayout(fx.spec);
    expect(layout.featureDim).toBe(fx.spec.widths[fx.spec.widths.length - 1]);
    const model = new CnnModel(fx.spec, 0);
    expect(Object.keys(model.vars).sort()).toEqual(Object.keys(fx.weights).sort());
    model.dispose();
  });

  it('features, loss, gradients and running stats equal torch to 1e-4', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const model = new CnnModel(fx.spec, 0);
    const values: Record<string, Float32Array> = {};
    for (const [name, w] of Object.entries(fx.weights)) values[name] = toModelLayout(name, w.data, w.shape);
    model.assign(values);
    const [n, c, h, w] = fx.input.shape;
    // NCHW → NHWC
    const nhwc = tf.tidy(() => tf.transpose(tf.tensor4d(fx.input.data, [n, c, h, w]), [0, 2, 3, 1])) as tf.Tensor4D;
    const labels = tf.tensor1d(fx.labels, 'int32');
    const stats: BnBatchStats[] = [];
    const varNames = Object.keys(model.vars);
    const kept: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const f = model.features(nhwc, true, stats);
      const logits = model.head(f);
      kept.push(tf.keep(f), tf.keep(logits));
      const k = fx.spec.numClasses;
      const eps = fx.labelSmoothing;
      const target = tf.add(tf.mul(tf.oneHot(labels, k), 1 - eps), eps / k);
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), target), 1))) as tf.Scalar;
    }, varNames.map((v) => model.vars[v]));
    expectClose(await kept[0].data(), fx.features, 1e-4, 'features');
    expectClose(await kept[1].data(), fx.logits, 1e-4, 'logits');
    expect(Math.abs((await value.data())[0] - fx.loss)).toBeLessThan(1e-5);
    for (const name of varNames) {
      const g = grads[model.vars[name].name];
      const want = toModelLayout(name, fx.grads[name], fx.weights[name].shape);
      expectClose(await g.data(), want, 1e-4, `grad ${name}`);
    }
    model.updateRunningStats(stats);
    for (const [name, r] of Object.entries(fx.running)) {
      expectClose(await model.buffers[`${name}.bn.running_mean`].data(), r.mean, 1e-5, `${name} running mean`);
      expectClose(await model.buffers[`${name}.bn.running_var`].data(), r.var, 1e-5, `${name} running var`);
    }
    tf.dispose([nhwc, labels, value, ...kept, ...Object.values(grads)]);
    model.dispose();
  });
});

/** Synthetic 2-class-per-stripe images: class k has a bright band at rows 2k..2k+2 (with noise). */
function stripes(count: number, classes: number, seed: number): ImageSet {
  let s = seed >>> 0;
  const rand = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const size = 12;
  const pixels = new Uint8Array(count * size * size);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const k = i % classes;
    labels[i] = k;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      const on = y >= 2 * k + 1 && y < 2 * k + 3;
      pixels[i * size * size + y * size + x] = Math.min(255, Math.round((on ? 180 : 40) + 60 * rand()));
    }
  }
  return { pixels, count, size: [1, size, size], labels };
}

describe('pretrainLoss', () => {
  const logits = [
    [2.0, -1.0, 0.5],
    [-0.3, 0.8, 4.0],
  ];
  const labels = [0, 1];
  it('BCE with logits is Σ over classes, mean over the batch (torch BCEWithLogitsLoss sum / N)', async () => {
    let want = 0;
    logits.forEach((row, i) => row.forEach((z, j) => {
      const t = j === labels[i] ? 1 : 0;
      const p = 1 / (1 + Math.exp(-z));
      want -= t * Math.log(p) + (1 - t) * Math.log(1 - p);
    }));
    want /= logits.length;
    const got = tf.tidy(() => pretrainLoss(tf.tensor2d(logits), tf.tensor1d(labels, 'int32'), { loss: 'bce', labelSmoothing: 0 }, 3));
    expect((await got.data())[0]).toBeCloseTo(want, 5);
  });
  it('label-smoothed CE is −Σ q log softmax with q = (1−ε)·onehot + ε/K', async () => {
    const eps = 0.2;
    let want = 0;
    logits.forEach((row, i) => {
      const lse = Math.log(row.reduce((a, z) => a + Math.exp(z), 0));
      row.forEach((z, j) => (want -= ((j === labels[i] ? 1 - eps : 0) + eps / 3) * (z - lse)));
    });
    want /= logits.length;
    const got = tf.tidy(() => pretrainLoss(tf.tensor2d(logits), tf.tensor1d(labels, 'int32'), { loss: 'ce', labelSmoothing: eps }, 3));
    expect((await got.data())[0]).toBeCloseTo(want, 5);
  });
});

describe('pretrainCnn', () => {
  const arch = { stemWidth: 4, stemStride: 1, widths: [4, 8], blocks: [1, 1] };
  const hyper = { epochs: 2, batchSize: 16, lr: 0.01, warmupEpochs: 0 };

  it('learns a separable synthetic task', async () => {
    const set = stripes(96, 4, 3);
    const r = await pretrainCnn({ train: set, numClasses: 4, seed: 1, arch, hyper: { ...hyper, epochs: 4 } });
    expect(r.epochsDone).toBe(4);
    expect(r.history[3].loss).toBeLessThan(r.history[0].loss);
    const acc = accuracyOf(await predictCnn(r.model, set, r.normalization), set.labels);
    expect(acc).toBeGreaterThan(0.9);
    r.model.dispose();
  });

  it('also learns with SGD + Nesterov momentum and the BCE loss', async () => {
    const set = stripes(96, 4, 3);
    const r = await pretrainCnn({ train: set, numClasses: 4, seed: 1, arch, hyper: { ...hyper, epochs: 6, optimizer: 'sgd', lr: 0.2, loss: 'bce' } });
    const losses = r.history.map((e) => e.loss);
    expect(losses[5]).toBeLessThan(0.7 * losses[0]);
    expect(r.history[5].trainAcc).toBeGreaterThan(0.85);
    r.model.dispose();
  });

  it('is reproducible from its seed', async () => {
    const set = stripes(64, 4, 5);
    const a = await pretrainCnn({ train: set, numClasses: 4, seed: 9, arch, hyper });
    const b = await pretrainCnn({ train: set, numClasses: 4, seed: 9, arch, hyper });
    const c = await pretrainCnn({ train: set, numClasses: 4, seed: 10, arch, hyper });
    expect(a.history.map((e) => e.loss)).toEqual(b.history.map((e) => e.loss));
    expect(c.history[0].loss).not.toBe(a.history[0].loss);
    for (const r of [a, b, c]) r.model.dispose();
  });

  it('stops between steps when aborted and says so', async () => {
    const set = stripes(64, 4, 5);
    const ctl = new AbortController();
    const r = await pretrainCnn({
      train: set, numClasses: 4, seed: 1, arch, hyper: { ...hyper, epochs: 5 }, signal: ctl.signal,
      onEvent: (e) => { if (e.kind === 'epoch' && e.epoch === 0) ctl.abort(); },
    });
    expect(r.aborted).toBe(true);
    expect(r.epochsDone).toBe(1);
    expect(r.stepsDone).toBe(4);
    r.model.dispose();
  });

  it('one epoch on onnxruntime follows the tfjs loss curve (Fashion-MNIST, every step within 2e-3)', async () => {
    const dir = join(__dirname, '../../resources/demo/fashion-mnist');
    const { images, labels } = await readIdxPair(join(dir, 'train-images-idx3-ubyte.gz'), join(dir, 'train-labels-idx1-ubyte.gz'));
    const n = 640;
    const set: ImageSet = { pixels: images.pixels.subarray(0, n * 784), count: n, size: [1, 28, 28], labels: labels.subarray(0, n) };
    const curve = async (engine: 'ort' | 'tfjs', optimizer: 'adamw' | 'sgd'): Promise<{ losses: number[]; engine: string; head: Float32Array }> => {
      const losses: number[] = [];
      const r = await pretrainCnn({ train: set, numClasses: 10, seed: 3, engine, stepEvery: 1, hyper: { epochs: 1, batchSize: 64, optimizer, lr: optimizer === 'sgd' ? 0.05 : 0.004 }, onEvent: (e) => void (e.kind === 'step' && losses.push(e.loss)) });
      const head = Float32Array.from(r.model.vars['head.weight'].dataSync());
      r.model.dispose();
      return { losses, engine: r.engine, head };
    };
    for (const optimizer of ['adamw', 'sgd'] as const) {
      const ort = await curve('ort', optimizer);
      const ref = await curve('tfjs', optimizer);
      // On x86 CPUs ORT has the NCHWc kernels, and the convolutions run on them (autodiff-nchwc.test.ts).
      expect(ort.engine).toMatch(/^onnxruntime(, NCHWc convolutions)?$/);
      expect(ref.engine).toBe('wasm');
      expect(ort.losses).toHaveLength(10);
      expect(ort.losses[9]).toBeLessThan(ort.losses[0] - 0.15);
      for (let i = 0; i < 10; i++) expect(Math.abs(ort.losses[i] - ref.losses[i]), `${optimizer} step ${i}`).toBeLessThan(2e-3);
      // the trained weights come back into the model
      expectClose(ort.head, ref.head, 2e-3, `${optimizer} head weights after the epoch`);
    }
  });

  it('frees its tensors', async () => {
    const set = stripes(32, 4, 5);
    const before = tf.memory().numTensors;
    const r = await pretrainCnn({ train: set, numClasses: 4, seed: 1, arch, hyper: { ...hyper, epochs: 1 } });
    const modelTensors = Object.keys(r.model.namedTensors()).length;
    expect(tf.memory().numTensors).toBe(before + modelTensors);
    r.model.dispose();
  });
});

function maxAbs(got: ArrayLike<number>, want: number[]): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]));
  return e;
}

describe('CNN training step against PyTorch on onnxruntime (ONNX autodiff)', () => {
  it('loss, features, every gradient, running statistics and the AdamW update', async () => {
    const weights: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(fx.weights)) weights[k] = Float32Array.from(v.data);
    for (const [layer, r] of Object.entries(fx.running)) {
      weights[`${layer}.bn.running_mean`] = new Float32Array(r.mean.length);
      weights[`${layer}.bn.running_var`] = new Float32Array(r.var.length).fill(1);
    }
    const lr = 0.01;
    const weightDecay = 0.05;
    const graph = buildTrainingGraph(cnnModelSpec(fx.spec, weights), {
      batchSize: fx.n,
      loss: { kind: 'softmax-ce', labelSmoothing: fx.labelSmoothing },
      optimizer: { kind: 'adamw', weightDecay },
      outputs: [CNN_FEATURE_NAME],
      gradients: true,
    });
    expect(graph.params.map((p) => p.name).sort()).toEqual(Object.keys(fx.grads).sort());
    const trainer = await OnnxTrainer.create(graph, { threads: 1, executionProviders: ['cpu'] });
    const r = await trainer.step(Float32Array.from(fx.input.data), fx.labels, lr);
    expect(r.loss).toBeCloseTo(fx.loss, 5);
    expect(maxAbs(r.values[CNN_FEATURE_NAME].data as Float32Array, fx.features)).toBeLessThan(1e-5);
    for (const [name, want] of Object.entries(fx.grads)) {
      const scale = Math.max(...want.map(Math.abs));
      expect(maxAbs(r.values[graph.outputs.grads[name]].data as Float32Array, want) / scale, name).toBeLessThan(1e-4);
    }
    const after = trainer.weights();
    for (const [layer, want] of Object.entries(fx.running)) {
      expect(maxAbs(after[`${layer}.bn.running_mean`], want.mean), `${layer} running mean`).toBeLessThan(1e-5);
      expect(maxAbs(after[`${layer}.bn.running_var`], want.var), `${layer} running var`).toBeLessThan(1e-5);
    }
    for (const p of graph.params) {
      const g = r.values[graph.outputs.grads[p.name]].data as Float32Array;
      const ref = new Float32Array(g.length);
      adamwUpdate(weights[p.name], g, new Float32Array(g.length), new Float32Array(g.length), ref, lr, 1, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: p.decayed ? weightDecay : 0 });
      expect(maxAbs(after[p.name], Array.from(ref)), `${p.name} after AdamW`).toBeLessThan(1e-6);
    }
    expect(graph.params.filter((p) => p.decayed).map((p) => p.name)).toEqual(graph.params.map((p) => p.name).filter((n) => n.endsWith('.weight')));
    await trainer.release();
  });

  it('names the first operator it cannot differentiate', () => {
    const weights: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(fx.weights)) weights[k] = Float32Array.from(v.data);
    for (const [layer, r] of Object.entries(fx.running)) {
      weights[`${layer}.bn.running_mean`] = new Float32Array(r.mean.length);
      weights[`${layer}.bn.running_var`] = new Float32Array(r.var.length).fill(1);
    }
    const spec = cnnModelSpec(fx.spec, weights);
    const nodes = spec.graph.nodes.map((n) => (n.name === 'stage1.0.conv1/relu' ? { ...n, opType: 'Softplus' } : n));
    expect(() => buildTrainingGraph({ ...spec, graph: { ...spec.graph, nodes } }, { batchSize: fx.n })).toThrow(/Softplus \(node "stage1.0.conv1\/relu"\)/);
  });
});
