/**
 * Every operator's gradient from NMLab's ONNX autodiff (src/core/onnx/autodiff) against
 * PyTorch autograd (test/fixtures/autodiff/make_op_grads.py): one node, its output reshaped
 * to [2, -1] as logits of a mean softmax cross-entropy; loss and the gradients of every
 * trainable input must match.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attr, valueInfo, type AttrValue, type ModelSpec, type TensorSpec } from '../../src/core/onnx/builder';
import { buildTrainingGraph } from '../../src/core/onnx/autodiff';
import { OnnxTrainer } from '../../src/core/onnx/autodiff/trainer';

interface Case {
  name: string;
  op: string;
  opset: number;
  attrs: Record<string, [string, number | number[]]>;
  outputs: number;
  batchNorm: 'train' | 'frozen' | null;
  inputs: { name: string; shape: number[]; dtype: 'float32' | 'int64' | 'bool'; kind: 'grad' | 'const' | 'int' | 'bool'; data: number[] }[];
  labels: number[];
  loss: number;
  grads: Record<string, number[]>;
}

const fixture = JSON.parse(readFileSync(join(__dirname, '../fixtures/autodiff/op_grads.json'), 'utf8')) as { batch: number; cases: Case[] };

function toAttr([type, value]: [string, number | number[]]): AttrValue {
  if (type === 'ints') return attr.ints(value as number[]);
  if (type === 'int') return attr.int(value as number);
  return attr.float(value as number);
}

function modelOf(c: Case): ModelSpec {
  const initializers: TensorSpec[] = c.inputs.map((i) => ({
    name: i.name,
    dataType: i.dtype,
    dims: i.shape,
    data: i.dtype === 'int64' ? BigInt64Array.from(i.data.map((v) => BigInt(v))) : i.dtype === 'bool' ? Uint8Array.from(i.data) : Float32Array.from(i.data),
  }));
  const outs = Array.from({ length: c.outputs }, (_, k) => `y${k}`);
  const y = outs[outs.length - 1];
  initializers.push({ name: 'logit_shape', dataType: 'int64', dims: [2], data: BigInt64Array.of(BigInt(fixture.batch), -1n) });
  return {
    opsetVersion: c.opset,
    graph: {
      name: c.name,
      // The data input is unused: every operand is a (trainable or constant) initializer.
      inputs: [valueInfo('data', 'float32', [fixture.batch, 1])],
      outputs: [valueInfo('logits', 'float32', [fixture.batch, null])],
      initializers,
      nodes: [
        { opType: c.op, inputs: c.inputs.map((i) => i.name), outputs: outs, attributes: Object.fromEntries(Object.entries(c.attrs).map(([k, v]) => [k, toAttr(v)])) },
        { opType: 'Reshape', inputs: [y, 'logit_shape'], outputs: ['logits'] },
      ],
    },
  };
}

function maxRelErr(got: Float32Array, want: number[]): number {
  const scale = Math.max(1e-3, ...want.map(Math.abs));
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]) / scale);
  return err;
}

describe('autodiff: every operator against PyTorch autograd', () => {
  for (const c of fixture.cases) {
    it(`${c.name} (${c.op})`, async () => {
      const trainable = c.inputs.filter((i) => i.kind === 'grad').map((i) => i.name);
      const graph = buildTrainingGraph(modelOf(c), { batchSize: fixture.batch, trainable, gradients: true, batchNorm: c.batchNorm ?? 'train' });
      const trainer = await OnnxTrainer.create(graph, { threads: 1, executionProviders: ['cpu'] });
      const r = await trainer.step(new Float32Array(fixture.batch), c.labels, 0.01);
      await trainer.release();
      expect(r.loss).toBeCloseTo(c.loss, 5);
      for (const name of trainable) {
        const got = r.values[graph.outputs.grads[name]].data as Float32Array;
        expect(got.length).toBe(c.grads[name].length);
        expect(maxRelErr(got, c.grads[name]), `d loss / d ${name}`).toBeLessThan(2e-5);
      }
    });
  }
});
