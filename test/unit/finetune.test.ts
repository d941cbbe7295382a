import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../../src/core/arrays/npy';
import { encodeModel } from '../../src/core/onnx/builder';
import { decodeModel } from '../../src/core/onnx/decode';
import { loadOrt, probeProvider } from '../../src/core/onnx/providers';
import { insertLora, loraDelta, mergeLora } from '../../src/core/finetune/lora';
import { HEAD_BIAS, HEAD_WEIGHT, LOGITS, withHead, withWeights } from '../../src/core/finetune/model';
import { NMTUNE_LOSS, nmtuneAux, trainModeForward, withNmtuneLoss } from '../../src/core/finetune/nmtune';
import { finetune, normalizeRows, resolveFinetuneParams, runRows, type TensorSet } from '../../src/core/finetune/run';
import { buildTrainingGraph } from '../../src/core/onnx/autodiff';
import { OnnxTrainer } from '../../src/core/onnx/autodiff/trainer';
import { PRESET_TERMS } from '../../src/core/tuning/params';
import { initTfBackend } from '../../src/core/tf/backend';
import { ensureGradients } from '../../src/core/tf/gradients';
import { readIdxPair } from '../../src/core/datasets/idx';
import { batchPixels } from '../../src/core/pretrain/batches';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, pretrainCnn, type ImageSet } from '../../src/core/pretrain/train';
import { exportCnnToOnnx } from '../../src/core/pretrain/onnx';
import { Rng } from '../../src/core/tuning/rng';

// Made by test/fixtures/finetune/make_finetune_fixture.py (PyTorch): a ResNet-style CNN
// pre-trained on four stroke patterns, and a downstream task on four other patterns.
const dir = join(__dirname, '..', 'fixtures', 'finetune');
const backbone = Uint8Array.from(readFileSync(join(dir, 'backbone.onnx')));

async function tensorSet(split: 'train' | 'test'): Promise<TensorSet> {
  const x = await readNpy(join(dir, `${split}_inputs.npy`));
  const y = await readNpy(join(dir, `${split}_labels.npy`));
  return { inputs: x.data as Float32Array, sampleShape: x.shape.slice(1), labels: Int32Array.from(y.data as BigInt64Array, Number), rows: x.shape[0], name: split };
}

describe('LoRA in the ONNX graph', () => {
  it('starts as the backbone (B = 0), and merging trained adapters reproduces the adapted network', async () => {
    const ort = await loadOrt();
    const test = await tensorSet('test');
    const set = { ...test, rows: 64, inputs: test.inputs.subarray(0, 64 * 256), labels: test.labels.subarray(0, 64) };
    const { model: headed } = withHead(decodeModel(backbone), 'features', [16], 4, new Rng(1));
    const { model: adapted, adapters } = insertLora(headed, { rank: 3, reduction: 8, alpha: 6, rng: new Rng(2), exclude: new Set([HEAD_WEIGHT]) });
    // Every Conv and the feature Gemm got an adapter; the new head did not.
    expect(adapters.map((a) => a.weight).sort()).toEqual(['fc.weight', 'l1.c1.weight', 'l1.c2.weight', 'l2.c1.weight', 'l2.c2.weight', 'l2.proj.0.weight', 'stem.0.weight']);
    expect(adapters.find((a) => a.weight === 'stem.0.weight')?.rank).toBe(3);
    expect(adapters[0].scale).toBe(2);

    const logits = async (m: Parameters<typeof encodeModel>[0]): Promise<Float32Array> => {
      const s = await ort.InferenceSession.create(encodeModel(m), { executionProviders: ['cpu'] });
      const out = await runRows(ort, s, 'pixels', LOGITS, set);
      await s.release();
      return out.data;
    };
    const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    const base = await logits(headed);
    // Equal up to float rounding (ORT fuses BatchNorm into a Conv only where nothing else reads it).
    expect(maxAbsDiff(await logits(adapted), base)).toBeLessThan(1e-5);

    // Give every B non-zero values: the adapted graph (base + s·B·A branch) and the merged
    // weights (W + s·B·A) must compute the same logits, and differ from the backbone's.
    const rng = new Rng(3);
    const weights: Record<string, Float32Array> = {};
    const withB = {
      ...adapted,
      graph: {
        ...adapted.graph,
        initializers: adapted.graph.initializers!.map((t) => {
          const data = adapters.some((a) => a.up === t.name) ? Float32Array.from({ length: t.data.length }, () => rng.uniform(-0.3, 0.3)) : (t.data as Float32Array);
          weights[t.name] = data;
          return { ...t, data };
        }),
      },
    };
    const unmerged = await logits(withB);
    const merged = await logits(mergeLora(headed, adapters, weights));
    expect(maxAbsDiff(unmerged, merged)).toBeLessThan(1e-4);
    expect(maxAbsDiff(unmerged, base)).toBeGreaterThan(0.1);
  });

  it('ΔW of a linear adapter is s·A·B in the weight layout (transposed for Gemm transB = 1)', () => {
    const a = { weight: 'w', kind: 'linear' as const, down: 'A', up: 'B', rank: 1, scale: 2, transposed: true, gemmAlpha: 1 };
    // A: in(3)×1, B: 1×out(2); (A·B)[i, j] = A[i]·B[j], stored out×in.
    expect(Array.from(loraDelta(a, Float32Array.of(1, 2, 3), Float32Array.of(10, 20), [2, 3]))).toEqual([20, 40, 60, 40, 80, 120]);
    expect(Array.from(loraDelta({ ...a, transposed: false }, Float32Array.of(1, 2, 3), Float32Array.of(10, 20), [3, 2]))).toEqual([20, 40, 40, 80, 60, 120]);
  });
});

describe('NMTune on the features of a backbone that trains (white-box)', () => {
  it('one step: loss and gradients of CE + 0.01·(L_MSE + L_COV + L_SVD) match PyTorch autograd', async () => {
    // test/fixtures/finetune/make_finetune_fixture.py: a fixed head and the first 32 training
    // rows; BatchNorm on the batch; F from the pre-trained backbone in eval mode.
    const ref = JSON.parse(readFileSync(join(dir, 'nmtune_step.json'), 'utf8')) as { rows: number; loss: number; headWeight: number[]; headBias: number[]; grads: Record<string, number[]> };
    const ort = await loadOrt();
    const train = await tensorSet('train');
    const rows = ref.rows;
    const x = train.inputs.slice(0, rows * 256);
    const batch = { ...train, rows, inputs: x, labels: train.labels.slice(0, rows) };
    const spec = decodeModel(backbone);
    const headed = withHead(spec, 'features', [16], 4, new Rng(0));
    const model = withWeights(headed.model, { [HEAD_WEIGHT]: Float32Array.from(ref.headWeight), [HEAD_BIAS]: Float32Array.from(ref.headBias) });
    const eval0 = await ort.InferenceSession.create(backbone, { executionProviders: ['cpu'] });
    const target = normalizeRows(await runRows(ort, eval0, 'pixels', 'features', batch));
    await eval0.release();

    const terms = PRESET_TERMS.paper;
    const tensors = new Set(model.graph.initializers!.filter((t) => t.dims.length > 0).map((t) => t.name));
    const graph = buildTrainingGraph(withNmtuneLoss(model, headed.features, rows, 16, terms, 'row-mean'), {
      batchSize: rows,
      input: 'pixels',
      logits: LOGITS,
      trainable: (n) => tensors.has(n),
      extraLoss: NMTUNE_LOSS,
      gradients: true,
      optimizer: { kind: 'adamw', weightDecay: 0 },
    });
    const trainer = await OnnxTrainer.create(graph, { executionProviders: ['cpu'] });
    const zModel = trainModeForward(model, headed.features, graph.params.map((p) => p.name));
    const zs = await ort.InferenceSession.create(encodeModel(zModel), { executionProviders: ['cpu'] });
    const feeds: Record<string, import('onnxruntime-node').Tensor> = { pixels: new ort.Tensor('float32', x, [rows, 1, 16, 16]) };
    for (const v of zModel.graph.inputs) if (v.name !== 'pixels') feeds[v.name] = trainer.current(v.name)!;
    const z = (await zs.run(feeds))[headed.features].data as Float32Array;
    await zs.release();
    const n = nmtuneAux(z, rows, 16, terms.svdTopK, target);
    const r = await trainer.step(x, batch.labels, 0, n.aux);
    await trainer.release();

    expect(r.loss + terms.svd * n.svdOffset).toBeCloseTo(ref.loss, 4);
    for (const [name, want] of Object.entries(ref.grads)) {
      const got = r.values[`${name}.grad`].data as Float32Array;
      const scale = Math.max(...want.map(Math.abs));
      const err = want.reduce((m, w, i) => Math.max(m, Math.abs(w - got[i])), 0);
      // Without the L_SVD gradient the error is 2e-3 to 5e-3 of the largest entry.
      expect(err / scale, name).toBeLessThan(1e-4);
    }
  });
});

describe('white-box tuning of an imported ResNet-style CNN', () => {
  it('has the paper defaults (DESIGN §4)', () => {
    expect(resolveFinetuneParams({ method: 'lora' })).toMatchObject({ lr: 2e-4, weightDecay: 1e-4, loraReduction: 8, rank: null, schedule: 'cosine' });
    expect(resolveFinetuneParams({ method: 'ft' })).toMatchObject({ lr: 1e-4, weightDecay: 1e-4 });
    expect(resolveFinetuneParams({ method: 'ft', lr: 3e-3 }).lr).toBe(3e-3);
  });

  it('ft and lora beat linear probing on a downstream task the pre-trained features separate poorly', async () => {
    const [train, test] = await Promise.all([tensorSet('train'), tensorSet('test')]);
    const common = { epochs: 6, batchSize: 32, seed: 0 };
    const lp = await finetune(backbone, train, test, { ...common, method: 'lp', lr: 1e-2 });
    const ft = await finetune(backbone, train, test, { ...common, method: 'ft', lr: 3e-3 });
    const lora = await finetune(backbone, train, test, { ...common, method: 'lora', lr: 1e-2, rank: 4 });
    // PyTorch on the same split: LP 0.60, FT 0.95 (reference.json, 10 epochs).
    const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { lp: number; ft: number };
    expect(Math.abs(lp.result.accuracy - ref.lp)).toBeLessThan(0.1);
    expect(ft.result.accuracy).toBeGreaterThan(lp.result.accuracy + 0.15);
    expect(lora.result.accuracy).toBeGreaterThan(lp.result.accuracy + 0.15);
    // LoRA trains adapters and head only: far fewer parameters than ft.
    expect(lora.result.trainableParams).toBeLessThan(ft.result.trainableParams / 2);
    expect(lp.result.trainableParams).toBe(16 * 4 + 4);
    for (const r of [lp, ft, lora]) {
      expect(r.result.epochLoss[r.result.epochLoss.length - 1]).toBeLessThan(r.result.epochLoss[0]);
      expect(r.result.macroF1).toBeGreaterThan(0);
      expect(r.result.epochs).toBe(6);
    }
    // The exported LoRA model is a plain network: no adapter left in it.
    expect(decodeModel(lora.model).graph.nodes.some((n) => n.outputs.some((o) => o.includes('lora')))).toBe(false);
  });

  it('evaluates the test set and OOD targets as tuning fits report them (spectra of Z beside the backbone\'s F)', async () => {
    const [train, test] = await Promise.all([tensorSet('train'), tensorSet('test')]);
    const half = { ...test, rows: 200, inputs: test.inputs.subarray(0, 200 * 256), labels: test.labels.subarray(0, 200), name: 'ood:first-half' };
    const lp = await finetune(backbone, train, test, { method: 'lp', epochs: 1, lr: 1e-2, batchSize: 64 }, { targets: [half] });
    expect([lp.result.test.name, ...lp.result.targets.map((e) => e.name)]).toEqual(['test', 'ood:first-half']);
    // LP leaves the backbone as it is, so Z is F: equal spectra.
    for (const e of [lp.result.test, ...lp.result.targets]) {
      expect(e.sve).toBeCloseTo(e.backboneSve!, 5);
      expect(e.lsvrRaw).toBeCloseTo(e.backboneLsvrRaw!, 5);
    }
    expect(lp.result.oodAccuracy).toBe(lp.result.targets[0].accuracy);
    expect(lp.result.backboneLsvr).toBe(lp.result.targets[0].backboneLsvr);
    // The target's accuracy is the test accuracy of its rows.
    const ort = await loadOrt();
    const s = await ort.InferenceSession.create(lp.model, { executionProviders: ['cpu'] });
    const logits = await runRows(ort, s, 'pixels', LOGITS, half);
    await s.release();
    let hits = 0;
    for (let i = 0; i < half.rows; i++) {
      const row = Array.from(logits.data.subarray(i * 4, i * 4 + 4));
      if (row.indexOf(Math.max(...row)) === half.labels[i]) hits++;
    }
    expect(lp.result.targets[0].accuracy).toBe(hits / half.rows);
    const ft = await finetune(backbone, train, test, { method: 'ft', epochs: 1, lr: 3e-3, batchSize: 64 });
    expect(Math.abs(ft.result.test.sve - ft.result.test.backboneSve!)).toBeGreaterThan(1e-3);
  });

  it('tunes NMLab\'s own CNN (pre-trained on onnxruntime, exported to ONNX) on classes it never saw', async () => {
    process.env.NMLAB_TF_BACKEND = 'wasm';
    await initTfBackend();
    await ensureGradients();
    const fm = join(__dirname, '..', '..', 'resources', 'demo', 'fashion-mnist');
    const files = { train: await readIdxPair(join(fm, 'train-images-idx3-ubyte.gz'), join(fm, 'train-labels-idx1-ubyte.gz')), t10k: await readIdxPair(join(fm, 't10k-images-idx3-ubyte.gz'), join(fm, 't10k-labels-idx1-ubyte.gz')) };
    const load = (part: 'train' | 't10k', classes: number[], perClass: number): ImageSet => {
      const { images, labels } = files[part];
      const keep: number[] = [];
      const seen = new Map<number, number>();
      for (let i = 0; i < labels.length; i++) {
        const c = classes.indexOf(labels[i]);
        if (c < 0 || (seen.get(c) ?? 0) >= perClass) continue;
        seen.set(c, (seen.get(c) ?? 0) + 1);
        keep.push(i);
      }
      const pixels = new Uint8Array(keep.length * 784);
      keep.forEach((i, k) => pixels.set(images.pixels.subarray(i * 784, (i + 1) * 784), k * 784));
      return { pixels, count: keep.length, size: [1, 28, 28], labels: Int32Array.from(keep, (i) => classes.indexOf(labels[i])) };
    };
    const pre = await pretrainCnn({ train: load('train', [0, 1, 2, 3, 4], 100), numClasses: 5, seed: 0, engine: 'ort', hyper: { epochs: 1, batchSize: 50 } });
    const onnx = exportCnnToOnnx(pre.model);
    pre.model.dispose();
    // Downstream: the five other classes, as the backbone's float input.
    const asTensors = (set: ImageSet): TensorSet => {
      const all = Int32Array.from({ length: set.count }, (_, i) => i);
      return { inputs: batchPixels(set, all, [FASHION_MNIST_MEAN], [FASHION_MNIST_STD], undefined, 'nchw'), sampleShape: [1, 28, 28], labels: set.labels, rows: set.count };
    };
    const train = asTensors(load('train', [5, 6, 7, 8, 9], 50));
    const test = asTensors(load('t10k', [5, 6, 7, 8, 9], 40));
    const lora = await finetune(onnx, train, test, { method: 'lora', epochs: 3, lr: 1e-2, batchSize: 25 });
    const convs = decodeModel(onnx).graph.nodes.filter((n) => n.opType === 'Conv').length;
    expect(lora.result.adapted.length).toBe(convs);
    expect(lora.result.featureDim).toBe(64);
    // Five classes: chance is 0.2.
    expect(lora.result.accuracy).toBeGreaterThan(0.6);
  });

  it('trains on CUDA as on CPU when a GPU is present', async (ctx) => {
    const cuda = await probeProvider('cuda');
    if (!cuda.available) ctx.skip(`needs the CUDA execution provider: ${cuda.detail}`);
    const [train, test] = await Promise.all([tensorSet('train'), tensorSet('test')]);
    const prev = process.env.NMLAB_EP;
    try {
      process.env.NMLAB_EP = 'cuda';
      const gpu = await finetune(backbone, train, test, { method: 'ft', epochs: 2, lr: 3e-3, batchSize: 32 });
      process.env.NMLAB_EP = 'cpu';
      const cpu = await finetune(backbone, train, test, { method: 'ft', epochs: 2, lr: 3e-3, batchSize: 32 });
      expect(gpu.result.provider).toBe('cuda');
      gpu.result.epochLoss.forEach((l, i) => expect(Math.abs(l - cpu.result.epochLoss[i])).toBeLessThan(1e-2));
    } finally {
      if (prev === undefined) delete process.env.NMLAB_EP;
      else process.env.NMLAB_EP = prev;
    }
  });
});
