/**
 * The training graph's convolutions on ORT's NCHWc kernels (src/core/onnx/autodiff/nchwc.ts):
 * the rewritten graph must compute what the graph as built computes (which autodiff-nets and
 * autodiff-ops check against PyTorch autograd), and leave alone what it cannot run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildTrainingGraph, type TrainingGraph } from '../../src/core/onnx/autodiff';
import { attr, encodeModel, valueInfo, type ModelSpec } from '../../src/core/onnx/builder';
import { attrInts } from '../../src/core/onnx/autodiff/shapes';
import { nchwcBlockProved, nchwcBlockSize, nchwcModel, nchwcTrainingModel } from '../../src/core/onnx/autodiff/nchwc';
import { OnnxTrainer } from '../../src/core/onnx/autodiff/trainer';
import { CnnModel } from '../../src/core/pretrain/cnn';
import { cnnModelSpec, cnnOnnxWeights } from '../../src/core/pretrain/onnx';
import { initTfBackend } from '../../src/core/tf/backend';

const block = await nchwcBlockSize(ort);
const BATCH = 16;

async function cnnGraph(widths: number[]): Promise<TrainingGraph> {
  process.env.NMLAB_TF_BACKEND = 'cpu';
  await initTfBackend();
  // Stem stride 2 (one input channel: MLAS's NCHW-input case), a stride-1 stage and a strided
  // stage with a 1×1 shortcut: every kind of convolution the rewrite handles or leaves.
  const model = new CnnModel({ inputSize: [1, 16, 16], stemWidth: widths[0], stemStride: 2, widths, blocks: [1, 1], numClasses: 5 }, 3);
  return buildTrainingGraph(cnnModelSpec(model.spec, cnnOnnxWeights(model)), {
    batchSize: BATCH,
    loss: { kind: 'softmax-ce' },
    optimizer: { kind: 'adamw', weightDecay: 5e-4, decay: (n) => n.endsWith('.weight') },
    gradients: true,
  });
}

function ops(g: { graph: { nodes: readonly { opType: string; domain?: string }[] } }): string[] {
  return g.graph.nodes.map((n) => `${n.domain ? `${n.domain}.` : ''}${n.opType}`);
}

const relNorm = (a: Float32Array, b: Float32Array): number => {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    s += a[i] ** 2;
  }
  return Math.sqrt(d / Math.max(s, 1e-30));
};

/** Output dx of a model on the CPU provider. */
async function runDx(m: ModelSpec, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(m), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    return (await session.run(feeds)).dx.data as Float32Array;
  } finally {
    await session.release();
  }
}

afterAll(() => {
  delete process.env.NMLAB_NCHWC;
});

describe.skipIf(block === null)(`NCHWc convolutions in training graphs (block ${block ?? 'unavailable: ORT has no NCHWc kernels here'})`, () => {
  it('reads the CPU\'s block from ORT: 8 (AVX2) or 16 (AVX-512), proved by convolutions laid out for it', async () => {
    expect([8, 16]).toContain(block);
    expect(await nchwcBlockProved(ort, block as number)).toBe(true);
    // Filters laid out for another block compute something else: the proof refuses it.
    expect(await nchwcBlockProved(ort, 2 * (block as number)).catch(() => false)).toBe(false);
  });

  /** Builds the CNN of `widths`, checks what the rewrite replaced, and compares 3 steps with the graph as built. */
  async function rewriteMatches(widths: number[], reorderInputs: number, nhwcFromBlocked: number): Promise<void> {
    const b = block as number;
    const graph = await cnnGraph(widths);
    const plainConvs = ops(graph.model).filter((o) => o === 'Conv').length;
    const transposes = ops(graph.model).filter((o) => o === 'ConvTranspose').length;
    const rewritten = nchwcTrainingModel(graph, b)!;
    const after = ops(rewritten);
    // Every Conv (forward: stem, 2 × 2 block convs, shortcut; the stem's weight gradient's
    // one-hot im2col) is an NCHWc Conv now, and so is every ConvTranspose (input gradients; the
    // stem's input needs none): stage 2's conv1's and its strided 1×1 shortcut's by phases, the
    // shortcut's added in by the first one's Sum input.
    expect(plainConvs).toBe(7);
    expect(transposes).toBe(5);
    expect(after.filter((o) => o === 'Conv')).toHaveLength(0);
    expect(after.filter((o) => o === 'ConvTranspose')).toHaveLength(0);
    expect(after.filter((o) => o === 'com.microsoft.nchwc.Conv')).toHaveLength(plainConvs + transposes);
    expect(rewritten.graph.nodes.filter((n) => n.opType === 'Conv' && n.inputs.length === 4)).toHaveLength(1);
    // Inputs of fewer channels than a block stay NCHW (the stem's, and any narrower layer's).
    expect(after.filter((o) => o === 'com.microsoft.nchwc.ReorderInput')).toHaveLength(reorderInputs);
    // The weight gradients' NHWC copies of inputs already blocked come from the blocked tensor.
    const toNhwc = (m: ModelSpec): number => m.graph.nodes.filter((n) => n.opType === 'Transpose' && attrInts(n, 'perm')?.join() === '0,2,3,1').length;
    expect(toNhwc(graph.model) - toNhwc(rewritten)).toBe(nhwcFromBlocked);
    expect(rewritten.extraOpsets).toContainEqual({ domain: 'com.microsoft.nchwc', version: 1 });

    const x = Float32Array.from({ length: BATCH * 256 }, (_, i) => Math.sin(0.37 * i) + 0.2 * Math.cos(1.3 * i));
    const y = Array.from({ length: BATCH }, (_, i) => (i * 7) % 5);
    process.env.NMLAB_NCHWC = '0';
    const plain = await OnnxTrainer.create(graph, { threads: 1, executionProviders: ['cpu'] });
    delete process.env.NMLAB_NCHWC;
    const fast = await OnnxTrainer.create(graph, { threads: 1, executionProviders: ['cpu'] });
    expect([plain.layout, fast.layout]).toEqual(['nchw', 'nchwc']);
    try {
      for (let step = 0; step < 3; step++) {
        const [a, c] = [await plain.step(x, y, 1e-2), await fast.step(x, y, 1e-2)];
        expect(Math.abs(a.loss - c.loss), `loss, step ${step}`).toBeLessThan(1e-5 * Math.abs(a.loss));
        // Summation order differs, so a ReLU input within rounding of 0 may fall on the other
        // side now and then; in norm that stays far below what a layout error would cause (O(1)).
        for (const [name, out] of Object.entries(graph.outputs.grads)) {
          expect(relNorm(a.values[out].data as Float32Array, c.values[out].data as Float32Array), `d loss / d ${name}, step ${step}`).toBeLessThan(2e-3);
        }
      }
      const [wa, wc] = [plain.weights(), fast.weights()];
      for (const name of Object.keys(wa)) expect(relNorm(wa[name], wc[name]), name).toBeLessThan(1e-4);
    } finally {
      await Promise.all([plain.release(), fast.release()]);
    }
  }

  it('rewrites forward convolutions and input gradients, and the steps compute what the graph as built computes', async () => {
    const b = block as number;
    // All but the stem read whole blocks: 5 forward convolutions and 5 input gradients, 9 values
    // (stage 2's conv1 and shortcut read the same), and the weight gradients' 4 NHWC
    // copies of them (the same two share one) come from the blocked tensors, as does the stem's
    // im2col (the one-hot convolution's output).
    await rewriteMatches([b, 2 * b], 9, 5);
  });

  it('computes strided input gradients by phases as ConvTranspose does, and leaves those with phases of no taps or too long rows', async () => {
    const b = block as number;
    // [Co, Ci, kh, kw], strides, pads, dY's spatial size, output_padding
    const cases: { w: number[]; s: number[]; p: number[]; dy: number[]; op: number[]; phases: boolean }[] = [
      { w: [2 * b, b, 3, 3], s: [2, 2], p: [1, 1, 1, 1], dy: [7, 7], op: [1, 1], phases: true }, // 7 → 14
      { w: [4 * b, 2 * b, 3, 3], s: [2, 2], p: [1, 1, 1, 1], dy: [4, 4], op: [0, 0], phases: true }, // 4 → 7
      { w: [2 * b, b, 1, 1], s: [2, 2], p: [0, 0, 0, 0], dy: [7, 7], op: [1, 1], phases: false }, // 1×1: phases without taps
      { w: [6, 9, 2, 3], s: [1, 2], p: [0, 1, 1, 1], dy: [6, 3], op: [0, 0], phases: true }, // odd channels, asymmetric
      { w: [5, 3, 5, 5], s: [3, 3], p: [2, 2, 1, 1], dy: [3, 3], op: [2, 1], phases: true }, // stride 3, 5×5
      { w: [b, 3, 4, 4], s: [4, 4], p: [0, 0, 0, 0], dy: [3, 3], op: [0, 0], phases: true }, // a patch embedding
      { w: [b, b, 3, 3], s: [2, 2], p: [1, 1, 1, 1], dy: [14, 14], op: [1, 1], phases: false }, // 14 → 28: rows of 392
    ];
    for (const [k, c] of cases.entries()) {
      const [co, ci, kh, kw] = c.w;
      const out = [0, 1].map((i) => (c.dy[i] - 1) * c.s[i] - c.p[i] - c.p[i + 2] + c.w[2 + i] + c.op[i]);
      const dyShape = [3, co, ...c.dy];
      const dxShape = [3, ci, ...out];
      const model: ModelSpec = {
        opsetVersion: 17,
        graph: {
          name: `ct${k}`,
          nodes: [{ opType: 'ConvTranspose', inputs: ['dy', 'w'], outputs: ['dx'], attributes: { strides: attr.ints(c.s), pads: attr.ints(c.p), kernel_shape: attr.ints([kh, kw]), output_padding: attr.ints(c.op) } }],
          inputs: [valueInfo('dy', 'float32', dyShape), valueInfo('w', 'float32', c.w)],
          outputs: [valueInfo('dx', 'float32', dxShape)],
        },
      };
      const rewritten = nchwcModel(model, new Map([['dy', dyShape], ['w', c.w], ['dx', dxShape]]), b);
      expect(rewritten === null, `case ${k}: left as ConvTranspose`).toBe(!c.phases);
      if (!rewritten) continue;
      expect(ops(rewritten), `case ${k}`).not.toContain('ConvTranspose');
      const feeds = {
        dy: new ort.Tensor('float32', Float32Array.from({ length: dyShape.reduce((a, v) => a * v, 1) }, (_, i) => Math.sin(0.71 * i + k)), dyShape),
        w: new ort.Tensor('float32', Float32Array.from({ length: c.w.reduce((a, v) => a * v, 1) }, (_, i) => Math.cos(1.3 * i - k)), c.w),
      };
      const [want, got] = [await runDx(model, feeds), await runDx(rewritten, feeds)];
      expect(got.length, `case ${k}`).toBe(want.length);
      expect(relNorm(want, got), `case ${k}`).toBeLessThan(1e-6);
    }
  });

  it('adds a strided 1×1 shortcut\'s input gradient into its neighbour\'s phases, as ConvTranspose + Add compute it', async () => {
    const b = block as number;
    for (const [k, [co, ci, ho, h]] of [[2 * b, b, 7, 14], [4 * b, 2 * b, 4, 7], [5, 3, 4, 8]].entries()) {
      const op = h - (ho - 1) * 2 + 2 - 3; // the 3×3 / pad 1 one's output padding
      const dyShape = [3, co, ho, ho];
      const dxShape = [3, ci, h, h];
      const ct = (dy: string, w: string, out: string, kernel: number, pad: number, outPad: number) => ({ opType: 'ConvTranspose', inputs: [dy, w], outputs: [out], attributes: { strides: attr.ints([2, 2]), pads: attr.ints([pad, pad, pad, pad]), kernel_shape: attr.ints([kernel, kernel]), output_padding: attr.ints([outPad, outPad]) } });
      const model: ModelSpec = {
        opsetVersion: 17,
        graph: {
          name: `pair${k}`,
          // The Add's operands in the order autodiff happens to write them: the shortcut's first here.
          nodes: [ct('dy2', 'w2', 'g2', 1, 0, h - (ho - 1) * 2 - 1), ct('dy1', 'w1', 'g1', 3, 1, op), { opType: 'Add', inputs: ['g2', 'g1'], outputs: ['dx'] }],
          inputs: [valueInfo('dy1', 'float32', dyShape), valueInfo('w1', 'float32', [co, ci, 3, 3]), valueInfo('dy2', 'float32', dyShape), valueInfo('w2', 'float32', [co, ci, 1, 1])],
          outputs: [valueInfo('dx', 'float32', dxShape)],
        },
      };
      const shapes = new Map([['dy1', dyShape], ['dy2', dyShape], ['w1', [co, ci, 3, 3]], ['w2', [co, ci, 1, 1]], ['g1', dxShape], ['g2', dxShape], ['dx', dxShape]]);
      const rewritten = nchwcModel(model, shapes, b);
      expect(rewritten && ops(rewritten).filter((o) => o === 'ConvTranspose' || o === 'Add'), `case ${k}`).toEqual([]);
      const fill = (shape: number[], f: (i: number) => number) => new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, v) => a * v, 1) }, (_, i) => f(i)), shape);
      const feeds = { dy1: fill(dyShape, (i) => Math.sin(0.3 * i)), dy2: fill(dyShape, (i) => Math.cos(0.7 * i)), w1: fill([co, ci, 3, 3], (i) => Math.sin(1.1 * i + 1)), w2: fill([co, ci, 1, 1], (i) => Math.cos(0.9 * i)) };
      expect(relNorm(await runDx(model, feeds), await runDx(rewritten as ModelSpec, feeds)), `case ${k}`).toBeLessThan(1e-6);
    }
  });

  it('pads channel counts that are not whole blocks with zero filters and channels, and computes the same', async () => {
    const b = block as number;
    // Half a block in stage 1 (inputs stay NCHW, filters padded), a block and a half in stage 2
    // (inputs padded by ReorderInput, filters padded): stage 2's second convolution and the
    // input gradients of its three convolutions read 3b/2 channels (and the stem's im2col comes
    // blocked, as above).
    await rewriteMatches([b / 2, b + b / 2], 4, 2);
  });
});
