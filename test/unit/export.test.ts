/**
 * ONNX export of NMLab's CNN (src/core/pretrain/onnx.ts) checked against an independent
 * runtime: onnxruntime-node's features and logits on the exported model equal tfjs's
 * eval-mode forward pass to 1e-4, for random weights (random BN statistics too) over
 * several shapes, and for a briefly trained backbone saved with saveBackbone.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { initTfBackend } from '../../src/core/tf/backend';
import { ensureGradients } from '../../src/core/tf/gradients';
import { CnnModel, type CnnSpec } from '../../src/core/pretrain/cnn';
import { exportCnnToOnnx } from '../../src/core/pretrain/onnx';
import { backboneIdFor, loadWeights, saveBackbone } from '../../src/core/pretrain/backbone';
import { extractCnnFeatures, pretrainCnn, type ImageSet } from '../../src/core/pretrain/train';
import { BackboneManifest } from '../../src/shared/contract/backbones';

let dir = '';
beforeAll(async () => {
  process.env.NMLAB_TF_BACKEND = 'wasm';
  await initTfBackend();
  await ensureGradients();
  dir = await mkdtemp(join(tmpdir(), 'nmlab-export-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

/** Random BN parameters and running statistics, so eval-mode BN is far from the identity. */
function randomiseBn(model: CnnModel, seed: number): void {
  const r = lcg(seed);
  const values: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(model.namedTensors())) {
    if (name.endsWith('bn.gamma')) values[name] = Float32Array.from({ length: t.size }, () => 0.5 + r());
    else if (name.endsWith('bn.beta') || name.endsWith('running_mean')) values[name] = Float32Array.from({ length: t.size }, () => r() - 0.5);
    else if (name.endsWith('running_var')) values[name] = Float32Array.from({ length: t.size }, () => 0.2 + 2 * r());
  }
  model.assign(values);
}

async function runOrt(bytes: Uint8Array, nchw: Float32Array, shape: number[]): Promise<{ features: Float32Array; logits: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', nchw, shape) });
  await session.release();
  return { features: out.features.data as Float32Array, logits: out.logits.data as Float32Array };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
  expect(worst, what).toBeLessThan(1e-4);
}

const SPECS: CnnSpec[] = [
  { inputSize: [1, 28, 28], stemWidth: 8, stemStride: 2, widths: [8, 16, 24], blocks: [1, 2, 1], numClasses: 10 },
  { inputSize: [3, 13, 11], stemWidth: 6, stemStride: 1, widths: [6, 10], blocks: [2, 1], numClasses: 4 },
];

describe('exportCnnToOnnx', () => {
  for (const spec of SPECS) {
    it(`matches tfjs for random weights, input ${spec.inputSize.join('×')}`, async () => {
      const model = new CnnModel(spec, 11);
      randomiseBn(model, 5);
      const [c, h, w] = spec.inputSize;
      const n = 6;
      const r = lcg(3);
      const nchw = Float32Array.from({ length: n * c * h * w }, () => 2 * r() - 1);
      const [feats, logits] = tf.tidy(() => {
        const x = tf.transpose(tf.tensor4d(nchw, [n, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
        const f = model.features(x, false);
        return [f, model.head(f)];
      });
      const got = await runOrt(exportCnnToOnnx(model), nchw, [n, c, h, w]);
      expectClose(got.features, await feats.data(), 'features');
      expectClose(got.logits, await logits.data(), 'logits');
      // The features must depend on the input (a constant output would pass trivially).
      const f0 = got.features.subarray(0, model.featureDim);
      const f1 = got.features.subarray(model.featureDim, 2 * model.featureDim);
      expect(f0.some((v, i) => Math.abs(v - f1[i]) > 1e-3)).toBe(true);
      tf.dispose([feats, logits]);
      model.dispose();
    });
  }

  it('a briefly trained backbone: backbone.json, sha256, ORT = tfjs, weights round-trip', async () => {
    const r = lcg(9);
    const count = 64;
    const set: ImageSet = { pixels: Uint8Array.from({ length: count * 28 * 28 }, () => Math.floor(256 * r())), count, size: [1, 28, 28], labels: Int32Array.from({ length: count }, (_, i) => i % 3) };
    const trained = await pretrainCnn({ train: set, numClasses: 3, seed: 2, arch: { stemWidth: 8, widths: [8, 16], blocks: [1, 1] }, hyper: { epochs: 1, batchSize: 16 } });
    const id = backboneIdFor(0.05);
    expect(id).toBe('nmlab-cnn.g05');
    const out = join(dir, id);
    const saved = await saveBackbone(out, trained.model, {
      id,
      normalization: trained.normalization,
      provenance: {
        source: 'nmlab-pretrain', createdAt: new Date(0).toISOString(), dataset: 'random', noise: { type: 'symmetric', ratio: 0.05, seed: 1 }, flippedCount: 3,
        transitionMatrix: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], seed: 2, trainCount: count, epochs: 1, arch: trained.model.spec, hyper: { ...trained.hyper }, backend: 'wasm', seconds: trained.seconds,
        trainAccNoisy: 0, trainAccClean: 0, history: [],
      },
    });
    const manifest = BackboneManifest.parse(JSON.parse(await readFile(join(out, 'backbone.json'), 'utf8')));
    expect(manifest.id).toBe(id);
    expect(manifest.output).toEqual({ node: 'features', featureDim: 16 });
    expect(manifest.preprocess.inputSize).toEqual([1, 28, 28]);
    expect(manifest.preprocess.layout).toBe('nchw');
    const bytes = await readFile(saved.modelFile);
    expect(manifest.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect((manifest.provenance as Record<string, unknown>).flippedCount).toBe(3);

    // ORT on the saved file, fed the same normalisation, against tfjs's eval features.
    const want = await extractCnnFeatures(trained.model, set, trained.normalization);
    const mean = manifest.preprocess.mean?.[0] ?? 0;
    const std = manifest.preprocess.std?.[0] ?? 1;
    const nchw = Float32Array.from(set.pixels, (p) => (p / 255 - mean) / std);
    const got = await runOrt(new Uint8Array(bytes), nchw, [count, 1, 28, 28]);
    expectClose(got.features, want, 'features');

    const reloaded = await loadWeights(out);
    const again = await extractCnnFeatures(reloaded, set, trained.normalization);
    expect(Array.from(again)).toEqual(Array.from(want));
    reloaded.dispose();
    trained.model.dispose();
  });
});
