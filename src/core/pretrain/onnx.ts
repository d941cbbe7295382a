/**
 * Export an NMLab CNN (src/core/pretrain/cnn.ts) to ONNX through the shared writer
 * (./builder.ts), so a backbone NMLab pre-trained goes through the same feature-extraction
 * path as any imported model (DESIGN §3, §6: "backbones NMLab trained as ONNX").
 *
 * Graph (opset 17), NCHW in, eval-mode BatchNorm with the running statistics:
 *   input [batch, C, H, W]
 *   Conv → BatchNormalization → Relu                      (stem)
 *   per block: Conv → BN → Relu → Conv → BN, shortcut (identity | Conv → BN), Add, Relu
 *   GlobalAveragePool → Flatten → `features` [batch, D]
 *   Gemm(features, W, b) → `logits` [batch, K]            (the pre-training head)
 *
 * BatchNormalization stays a node (not folded into the Conv) so the exported numbers are
 * the same operations tfjs runs; onnxruntime fuses Conv+BN itself when it optimises.
 * tfjs filters are [KH, KW, Cin, Cout]; ONNX wants [Cout, Cin, KH, KW].
 */
import * as tf from '@tensorflow/tfjs-core';
import { attr, encodeModel, valueInfo, type NodeSpec, type TensorSpec } from './builder';
import { CNN_BN_EPS, type CnnModel, type ConvLayer } from '../pretrain/cnn';

export const CNN_INPUT_NAME = 'input';
export const CNN_FEATURE_NAME = 'features';
export const CNN_LOGITS_NAME = 'logits';

export interface CnnExportOptions {
  /** Stored in ModelProto.metadata_props (backbone id, noise provenance, ...). */
  metadata?: Record<string, string>;
  /** Also output the pre-training head's logits (default true). */
  includeHead?: boolean;
  docString?: string;
}

/** [KH, KW, Cin, Cout] (row-major) → [Cout, Cin, KH, KW]. */
function toOihw(hwio: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(hwio.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = hwio[src + o];
      }
    }
  }
  return out;
}

/** Serialise `model`'s feature extractor (and head) to ONNX bytes. Reads the weights synchronously. */
export function exportCnnToOnnx(model: CnnModel, opts: CnnExportOptions = {}): Uint8Array {
  const values = (name: string): Float32Array => {
    const t = model.namedTensors()[name] as tf.Tensor | undefined;
    if (!t) throw new Error(`CNN export: tensor ${name} is missing`);
    return t.dataSync() as Float32Array;
  };
  const initializers: TensorSpec[] = [];
  const nodes: NodeSpec[] = [];

  const convBn = (layer: ConvLayer, input: string, relu: boolean): string => {
    const { name, kernel: k, inChannels: cin, outChannels: cout, stride, pad } = layer;
    initializers.push({ name: `${name}.weight`, dataType: 'float32', dims: [cout, cin, k, k], data: toOihw(values(`${name}.weight`), k, k, cin, cout) });
    for (const p of ['gamma', 'beta', 'running_mean', 'running_var']) {
      initializers.push({ name: `${name}.bn.${p}`, dataType: 'float32', dims: [cout], data: Float32Array.from(values(`${name}.bn.${p}`)) });
    }
    nodes.push({
      opType: 'Conv',
      name: `${name}/conv`,
      inputs: [input, `${name}.weight`],
      outputs: [`${name}.conv_out`],
      attributes: { kernel_shape: attr.ints([k, k]), strides: attr.ints([stride, stride]), pads: attr.ints([pad, pad, pad, pad]), dilations: attr.ints([1, 1]), group: attr.int(1) },
    });
    nodes.push({
      opType: 'BatchNormalization',
      name: `${name}/bn`,
      inputs: [`${name}.conv_out`, `${name}.bn.gamma`, `${name}.bn.beta`, `${name}.bn.running_mean`, `${name}.bn.running_var`],
      outputs: [`${name}.bn_out`],
      attributes: { epsilon: attr.float(CNN_BN_EPS) },
    });
    if (!relu) return `${name}.bn_out`;
    nodes.push({ opType: 'Relu', name: `${name}/relu`, inputs: [`${name}.bn_out`], outputs: [`${name}.relu_out`] });
    return `${name}.relu_out`;
  };

  const { layout, spec } = model;
  let h = convBn(layout.stem, CNN_INPUT_NAME, true);
  for (const b of layout.blocks) {
    const y1 = convBn(b.conv1, h, true);
    const y2 = convBn(b.conv2, y1, false);
    const sc = b.shortcut ? convBn(b.shortcut, h, false) : h;
    nodes.push({ opType: 'Add', name: `${b.name}/add`, inputs: [y2, sc], outputs: [`${b.name}.sum`] });
    nodes.push({ opType: 'Relu', name: `${b.name}/relu`, inputs: [`${b.name}.sum`], outputs: [`${b.name}.out`] });
    h = `${b.name}.out`;
  }
  nodes.push({ opType: 'GlobalAveragePool', name: 'pool', inputs: [h], outputs: ['pooled'] });
  nodes.push({ opType: 'Flatten', name: 'flatten', inputs: ['pooled'], outputs: [CNN_FEATURE_NAME], attributes: { axis: attr.int(1) } });

  const d = layout.featureDim;
  const outputs = [valueInfo(CNN_FEATURE_NAME, 'float32', ['batch', d])];
  if (opts.includeHead ?? true) {
    initializers.push({ name: 'head.weight', dataType: 'float32', dims: [d, spec.numClasses], data: Float32Array.from(values('head.weight')) });
    initializers.push({ name: 'head.bias', dataType: 'float32', dims: [spec.numClasses], data: Float32Array.from(values('head.bias')) });
    nodes.push({ opType: 'Gemm', name: 'head', inputs: [CNN_FEATURE_NAME, 'head.weight', 'head.bias'], outputs: [CNN_LOGITS_NAME] });
    outputs.push(valueInfo(CNN_LOGITS_NAME, 'float32', ['batch', spec.numClasses]));
  }

  const [c, hgt, wid] = spec.inputSize;
  return encodeModel({
    producerName: 'nmlab',
    docString: opts.docString ?? 'NMLab CNN backbone (src/core/pretrain/cnn.ts)',
    metadata: opts.metadata,
    graph: {
      name: 'nmlab_cnn',
      nodes,
      inputs: [valueInfo(CNN_INPUT_NAME, 'float32', ['batch', c, hgt, wid])],
      outputs,
      initializers,
    },
  });
}
