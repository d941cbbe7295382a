/**
 * Whole networks exported from PyTorch to ONNX (test/fixtures/autodiff/make_net_grads.py: a
 * MobileNet-style CNN and a small ViT, opset 13, dynamic batch) differentiated by NMLab's
 * autodiff: the loss and the gradient of every parameter for one batch must be PyTorch
 * autograd's (BatchNorm on batch statistics).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTrainingGraph } from '../../src/core/onnx/autodiff';
import { OnnxTrainer } from '../../src/core/onnx/autodiff/trainer';

interface Net {
  model: string;
  input: { shape: number[]; data: number[] };
  labels: number[];
  loss: number;
  grads: Record<string, number[]>;
}

const dir = join(__dirname, '../fixtures/autodiff');
const fixture = JSON.parse(readFileSync(join(dir, 'net_grads.json'), 'utf8')) as { nets: Net[] };

describe('autodiff: PyTorch-exported networks against PyTorch autograd', () => {
  for (const net of fixture.nets) {
    it(net.model, async () => {
      const bytes = new Uint8Array(readFileSync(join(dir, net.model)));
      const graph = buildTrainingGraph(bytes, { batchSize: net.input.shape[0], gradients: true });
      expect(graph.params.map((p) => p.name).sort()).toEqual(Object.keys(net.grads).sort());
      const trainer = await OnnxTrainer.create(graph, { threads: 1, executionProviders: ['cpu'] });
      const r = await trainer.step(Float32Array.from(net.input.data), net.labels, 1e-3);
      await trainer.release();
      expect(r.loss).toBeCloseTo(net.loss, 5);
      for (const [name, want] of Object.entries(net.grads)) {
        const got = r.values[graph.outputs.grads[name]].data as Float32Array;
        const scale = Math.max(1e-4, ...want.map(Math.abs));
        let err = 0;
        for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]) / scale);
        expect(err, `d loss / d ${name}`).toBeLessThan(1e-4);
      }
    });
  }
});
