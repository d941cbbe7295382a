/**
 * NMLab's CNN (./cnn.ts) as an ONNX graph through the shared writer (../onnx/builder.ts):
 * the export of a pre-trained backbone, so it goes through the same feature-extraction path
 * as any imported model (DESIGN §3, §6: "backbones NMLab trained as ONNX"), and the forward
 * graph that ONNX Runtime pre-training differentiates (./train-ort.ts).
 *
 * Graph (opset 17), NCHW in, BatchNorm as a node with the running statistics:
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
import { attr, encodeModel, valueInfo, type ModelSpec, type NodeSpec, type TensorSpec } from '../onnx/builder';
import { NmlabError } from '../../shared/errors';
import { CNN_BN_EPS, cnnLayout, type CnnModel, type CnnSpec, type ConvLayer } from './cnn';

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

/** [Cout, Cin, KH, KW] → [KH, KW, Cin, Cout]: the inverse of {@link toOihw}. */
function toHwio(oihw: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(oihw.length);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) out[((y * kw + x) * cin + i) * cout + o] = oihw[((o * cin + i) * kh + y) * kw + x];
      }
    }
  }
  return out;
}

function convLayers(spec: CnnSpec): ConvLayer[] {
  const layout = cnnLayout(spec);
  return [layout.stem, ...layout.blocks.flatMap((b) => [b.conv1, b.conv2, ...(b.shortcut ? [b.shortcut] : [])])];
}

/** Every tensor of `model` by name, with conv weights in ONNX's [Cout, Cin, KH, KW] order. Reads synchronously. */
export function cnnOnnxWeights(model: CnnModel): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  const convs = new Map(convLayers(model.spec).map((l) => [`${l.name}.weight`, l]));
  for (const [name, t] of Object.entries(model.namedTensors())) {
    const v = Float32Array.from((t as tf.Tensor).dataSync() as Float32Array);
    const l = convs.get(name);
    out[name] = l ? toOihw(v, l.kernel, l.kernel, l.inChannels, l.outChannels) : v;
  }
  return out;
}

/** Writes weights in ONNX layout (as {@link cnnOnnxWeights} returns them) back into `model`. */
export function assignOnnxWeights(model: CnnModel, weights: Record<string, Float32Array>): void {
  const convs = new Map(convLayers(model.spec).map((l) => [`${l.name}.weight`, l]));
  const values: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(weights)) {
    const l = convs.get(name);
    values[name] = l ? toHwio(v, l.kernel, l.kernel, l.inChannels, l.outChannels) : v;
  }
  model.assign(values);
}

/** The CNN of `spec` with `weights` (ONNX layout, every name of the architecture) as an ONNX model. */
export function cnnModelSpec(spec: CnnSpec, weights: Record<string, Float32Array>, opts: CnnExportOptions = {}): ModelSpec {
  const layout = cnnLayout(spec);
  const values = (name: string): Float32Array => {
    const t = weights[name];
    if (!t) throw new NmlabError('BAD_REQUEST', `CNN export: tensor ${name} is missing`);
    return t;
  };
  const initializers: TensorSpec[] = [];
  const nodes: NodeSpec[] = [];

  const convBn = (layer: ConvLayer, input: string, relu: boolean): string => {
    const { name, kernel: k, inChannels: cin, outChannels: cout, stride, pad } = layer;
    initializers.push({ name: `${name}.weight`, dataType: 'float32', dims: [cout, cin, k, k], data: values(`${name}.weight`) });
    for (const p of ['gamma', 'beta', 'running_mean', 'running_var']) {
      initializers.push({ name: `${name}.bn.${p}`, dataType: 'float32', dims: [cout], data: values(`${name}.bn.${p}`) });
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
      // ONNX's momentum weighs the old running value: torch's 0.1 is ONNX's 0.9.
      attributes: { epsilon: attr.float(CNN_BN_EPS), momentum: attr.float(0.9) },
    });
    if (!relu) return `${name}.bn_out`;
    nodes.push({ opType: 'Relu', name: `${name}/relu`, inputs: [`${name}.bn_out`], outputs: [`${name}.relu_out`] });
    return `${name}.relu_out`;
  };

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
    initializers.push({ name: 'head.weight', dataType: 'float32', dims: [d, spec.numClasses], data: values('head.weight') });
    initializers.push({ name: 'head.bias', dataType: 'float32', dims: [spec.numClasses], data: values('head.bias') });
    nodes.push({ opType: 'Gemm', name: 'head', inputs: [CNN_FEATURE_NAME, 'head.weight', 'head.bias'], outputs: [CNN_LOGITS_NAME] });
    outputs.push(valueInfo(CNN_LOGITS_NAME, 'float32', ['batch', spec.numClasses]));
  }

  const [c, hgt, wid] = spec.inputSize;
  return {
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
  };
}

/** Serialise `model`'s feature extractor (and head) to ONNX bytes. Reads the weights synchronously. */
export function exportCnnToOnnx(model: CnnModel, opts: CnnExportOptions = {}): Uint8Array {
  return encodeModel(cnnModelSpec(model.spec, cnnOnnxWeights(model), opts));
}
