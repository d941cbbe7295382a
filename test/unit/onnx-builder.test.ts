import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { attr, encodeModel, valueInfo, type ModelSpec } from '../../src/core/onnx/builder';
import { decodeModel } from '../../src/core/onnx/decode';
import { ProtoWriter } from '../../src/core/onnx/proto';

describe('ProtoWriter wire format (examples from protobuf.dev/programming-guides/encoding)', () => {
  it('varints, tags, strings, negative int64', () => {
    expect(Array.from(new ProtoWriter().int(1, 150).finish())).toEqual([0x08, 0x96, 0x01]);
    expect(Array.from(new ProtoWriter().string(2, 'testing').finish())).toEqual([0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]);
    expect(Array.from(new ProtoWriter().varint(300).finish())).toEqual([0xac, 0x02]);
    expect(Array.from(new ProtoWriter().int(1, -1).finish())).toEqual([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(Array.from(new ProtoWriter().packedInts(4, [3, 270, 86942]).finish())).toEqual([0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]);
    expect(Array.from(new ProtoWriter().varint(2 ** 40).finish())).toEqual([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  });
});

/** Deterministic pseudo-random numbers for weights. */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

describe('models built with encodeModel run in onnxruntime', () => {
  it('float64 MatMul equals a JS float64 product', async () => {
    const bytes = encodeModel({
      graph: {
        name: 'mm',
        inputs: [valueInfo('a', 'float64', ['m', 'k']), valueInfo('b', 'float64', ['k', 'n'])],
        outputs: [valueInfo('c', 'float64', ['m', 'n'])],
        nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['c'] }],
      },
    });
    const s = await ort.InferenceSession.create(bytes);
    const a = Float64Array.from(rand(15, 1));
    const b = Float64Array.from(rand(20, 2));
    const out = (await s.run({ a: new ort.Tensor('float64', a, [3, 5]), b: new ort.Tensor('float64', b, [5, 4]) })).c;
    expect(out.dims).toEqual([3, 4]);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 4; j++) {
        let ref = 0;
        for (let k = 0; k < 5; k++) ref += a[i * 5 + k] * b[k * 4 + j];
        expect((out.data as Float64Array)[i * 4 + j]).toBeCloseTo(ref, 14);
      }
    }
  });

  it('a residual CNN block (Conv, BatchNormalization, Relu, Add, GlobalAveragePool, Flatten, Gemm) matches a JS reference', async () => {
    const C = 2;
    const H = 4;
    const W = 4;
    const K = 3;
    const classes = 3;
    const w = rand(C * C * K * K, 3);
    const bconv = rand(C, 4);
    const gamma = rand(C, 5).map((v) => v + 1);
    const beta = rand(C, 6);
    const mean = rand(C, 7);
    const variance = rand(C, 8).map((v) => v + 1);
    const fcW = rand(classes * C, 9);
    const fcB = rand(classes, 10);
    const eps = 1e-3;
    const bytes = encodeModel({
      opsetVersion: 17,
      metadata: { 'nmlab.backbone': 'test.block' },
      graph: {
        name: 'block',
        inputs: [valueInfo('x', 'float32', ['batch', C, H, W])],
        outputs: [valueInfo('logits', 'float32', ['batch', classes])],
        initializers: [
          { name: 'w', dataType: 'float32', dims: [C, C, K, K], data: w },
          { name: 'b', dataType: 'float32', dims: [C], data: bconv },
          { name: 'gamma', dataType: 'float32', dims: [C], data: gamma },
          { name: 'beta', dataType: 'float32', dims: [C], data: beta },
          { name: 'mean', dataType: 'float32', dims: [C], data: mean },
          { name: 'var', dataType: 'float32', dims: [C], data: variance },
          { name: 'fcW', dataType: 'float32', dims: [classes, C], data: fcW },
          { name: 'fcB', dataType: 'float32', dims: [classes], data: fcB },
        ],
        nodes: [
          { opType: 'Conv', name: 'conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attributes: { kernel_shape: attr.ints([K, K]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([1, 1]) } },
          { opType: 'BatchNormalization', inputs: ['c', 'gamma', 'beta', 'mean', 'var'], outputs: ['bn'], attributes: { epsilon: attr.float(eps) } },
          { opType: 'Relu', inputs: ['bn'], outputs: ['r'] },
          { opType: 'Add', inputs: ['r', 'x'], outputs: ['res'] },
          { opType: 'GlobalAveragePool', inputs: ['res'], outputs: ['gap'] },
          { opType: 'Flatten', inputs: ['gap'], outputs: ['flat'], attributes: { axis: attr.int(1) } },
          { opType: 'Gemm', inputs: ['flat', 'fcW', 'fcB'], outputs: ['logits'], attributes: { transB: attr.int(1), alpha: attr.float(0.5) } },
        ],
      },
    });
    const s = await ort.InferenceSession.create(bytes);
    const x = rand(2 * C * H * W, 11);
    const out = (await s.run({ x: new ort.Tensor('float32', x, [2, C, H, W]) })).logits;
    expect(out.dims).toEqual([2, classes]);
    for (let n = 0; n < 2; n++) {
      const pooled = new Float64Array(C);
      for (let co = 0; co < C; co++) {
        for (let i = 0; i < H; i++) {
          for (let j = 0; j < W; j++) {
            let acc = bconv[co];
            for (let ci = 0; ci < C; ci++) {
              for (let ki = 0; ki < K; ki++) {
                for (let kj = 0; kj < K; kj++) {
                  const ii = i + ki - 1;
                  const jj = j + kj - 1;
                  if (ii < 0 || jj < 0 || ii >= H || jj >= W) continue;
                  acc += w[((co * C + ci) * K + ki) * K + kj] * x[((n * C + ci) * H + ii) * W + jj];
                }
              }
            }
            const bn = ((acc - mean[co]) / Math.sqrt(variance[co] + eps)) * gamma[co] + beta[co];
            pooled[co] += Math.max(bn, 0) + x[((n * C + co) * H + i) * W + j];
          }
        }
        pooled[co] /= H * W;
      }
      for (let k = 0; k < classes; k++) {
        let ref = fcB[k];
        for (let c = 0; c < C; c++) ref += 0.5 * pooled[c] * fcW[k * C + c];
        expect((out.data as Float32Array)[n * classes + k]).toBeCloseTo(ref, 5);
      }
    }
  });
});

describe('graph checks', () => {
  const base = { name: 'g', inputs: [valueInfo('x', 'float32', [1])], outputs: [valueInfo('y', 'float32', [1])] };
  it('catches unknown inputs, duplicate outputs, missing outputs, bad tensors', () => {
    expect(() => encodeModel({ graph: { ...base, nodes: [{ opType: 'Relu', inputs: ['z'], outputs: ['y'] }] } })).toThrow(/input "z" is not a graph input/);
    expect(() => encodeModel({ graph: { ...base, nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['x'] }] } })).toThrow(/output "x" is already defined/);
    expect(() => encodeModel({ graph: { ...base, nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['q'] }] } })).toThrow(/output "y" is never produced/);
    expect(() =>
      encodeModel({ graph: { ...base, initializers: [{ name: 't', dataType: 'float32', dims: [2], data: new Float64Array(2) }], nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }] } }),
    ).toThrow(/needs a Float32Array/);
  });
});

describe('decodeModel reads back what encodeModel writes', () => {
  it('round-trips nodes, every attribute type, initializers of each element type, value infos, opsets and metadata', () => {
    const spec: ModelSpec = {
      opsetVersion: 15,
      extraOpsets: [{ domain: 'com.microsoft', version: 1 }],
      metadata: { backbone: 'nmlab-cnn.g20' },
      graph: {
        name: 'all',
        inputs: [valueInfo('x', 'float32', ['batch', 3, 7])],
        outputs: [valueInfo('y', 'float32', ['batch', null, 7])],
        initializers: [
          { name: 'f', dataType: 'float32', dims: [2, 2], data: Float32Array.of(1.5, -2, 3.25, 0) },
          { name: 'd', dataType: 'float64', dims: [1], data: Float64Array.of(Math.PI) },
          { name: 'i', dataType: 'int64', dims: [3], data: BigInt64Array.of(-1n, 0n, 2n ** 40n) },
          { name: 'j', dataType: 'int32', dims: [], data: Int32Array.of(-7) },
          { name: 'u', dataType: 'uint8', dims: [2], data: Uint8Array.of(0, 255) },
        ],
        nodes: [
          {
            opType: 'Custom',
            name: 'n0',
            domain: 'com.microsoft',
            inputs: ['x', '', 'f'],
            outputs: ['y'],
            attributes: {
              a: attr.float(0.25),
              b: attr.int(-3),
              c: attr.string('same'),
              d: attr.floats([1, 0.5]),
              e: attr.ints([1, -2, 3]),
              g: attr.strings(['p', 'q']),
              t: attr.tensor({ name: 'v', dataType: 'float32', dims: [1], data: Float32Array.of(7) }),
            },
          },
        ],
      },
    };
    const back = decodeModel(encodeModel(spec));
    expect(back.opsetVersion).toBe(15);
    expect(back.extraOpsets).toEqual([{ domain: 'com.microsoft', version: 1 }]);
    expect(back.metadata).toEqual({ backbone: 'nmlab-cnn.g20' });
    expect(back.graph.inputs).toEqual(spec.graph.inputs);
    expect(back.graph.outputs).toEqual(spec.graph.outputs);
    expect(back.graph.nodes).toEqual(spec.graph.nodes);
    expect(back.graph.initializers).toEqual(spec.graph.initializers);
  });
});
