/**
 * Pre-training steps on onnxruntime (issue 11.2): the CNN's ONNX graph (./onnx.ts),
 * differentiated by ../onnx/autodiff into one graph holding forward (BatchNorm on batch
 * statistics), softmax cross-entropy, backward and the optimiser (AdamW with decay on
 * weights only, or Nesterov SGD), run once per step with every core (intra-op threads).
 * Initialisation, batch order, flips and the learning-rate schedule are those of the tfjs
 * path: ./train.ts drives both engines with the same loop.
 */
import { buildTrainingGraph } from '../onnx/autodiff';
import { OnnxTrainer } from '../onnx/autodiff/trainer';
import { assignOnnxWeights, cnnModelSpec, cnnOnnxWeights } from './onnx';
import { batchPixels } from './batches';
import type { StepEngine, StepEngineContext } from './train';

export async function ortEngine(c: StepEngineContext): Promise<StepEngine> {
  const { model, set, hyper, mean, std, rows } = c;
  const decay = (name: string): boolean => name.endsWith('.weight');
  const graph = buildTrainingGraph(cnnModelSpec(model.spec, cnnOnnxWeights(model)), {
    batchSize: rows,
    loss: { kind: 'softmax-ce', labelSmoothing: hyper.labelSmoothing },
    optimizer: hyper.optimizer === 'sgd' ? { kind: 'sgd', momentum: hyper.momentum, nesterov: true, weightDecay: hyper.weightDecay, decay } : { kind: 'adamw', weightDecay: hyper.weightDecay, decay },
  });
  const trainer = await OnnxTrainer.create(graph);
  return {
    // The provenance's backend: which kernels ran the convolutions (results differ in rounding).
    name: trainer.layout === 'nchwc' ? 'onnxruntime, NCHWc convolutions' : 'onnxruntime',
    async step(idx, flipMask, labels, lr) {
      const r = await trainer.step(batchPixels(set, idx, mean, std, flipMask, 'nchw'), labels, lr);
      return { loss: r.loss, hits: r.correct };
    },
    finish() {
      if (trainer.steps > 0) assignOnnxWeights(model, trainer.weights());
    },
    dispose() {
      void trainer.release();
    },
  };
}
