/**
 * The network white-box tuning trains: the backbone cut at its feature output Z (the nodes Z
 * depends on, nothing after it — an exported classifier head is dropped), Z flattened to
 * N×D, and a new linear head D → C (torch's nn.Linear initialisation, U(±1/√D) for weight and
 * bias) producing `nmlab.logits`.
 */
import { NmlabError } from '../../shared/errors';
import { attr, type ModelSpec, type NodeSpec, type TensorSpec } from '../onnx/builder';
import type { Rng } from '../tuning/rng';

export const LOGITS = 'nmlab.logits';
export const FEATURES = 'nmlab.features';
export const HEAD_WEIGHT = 'nmlab.head.weight';
export const HEAD_BIAS = 'nmlab.head.bias';

/** The backbone's data input (the first graph input that is not an initializer). */
export function dataInput(model: ModelSpec, name?: string): string {
  const inits = new Set((model.graph.initializers ?? []).map((t) => t.name));
  const inputs = model.graph.inputs.filter((v) => !inits.has(v.name));
  const found = name === undefined ? inputs[0] : inputs.find((v) => v.name === name);
  if (!found) throw new NmlabError('BAD_REQUEST', `ONNX model "${model.graph.name}" has no data input${name ? ` "${name}"` : ''}; its inputs are ${inputs.map((v) => `"${v.name}"`).join(', ')}`);
  if (found.elemType !== 'float32') throw new NmlabError('UNSUPPORTED', `ONNX model "${model.graph.name}": input "${found.name}" is ${found.elemType}; white-box tuning feeds float32 tensors`);
  return found.name;
}

/** The nodes `value` depends on, in graph order, and every value they read (with `value`). */
export function nodesFor(all: readonly NodeSpec[], value: string): { nodes: NodeSpec[]; needed: Set<string> } {
  const needed = new Set([value]);
  const nodes: NodeSpec[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const n = all[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    nodes.push(n);
    for (const inp of n.inputs) if (inp) needed.add(inp);
  }
  return { nodes: nodes.reverse(), needed };
}

/**
 * The backbone up to `featureOutput` with a linear head on it. `featureShape` is the feature
 * output's per-sample shape (measured by running the backbone once). `features` names Z,
 * the N×D value the head reads.
 */
export function withHead(model: ModelSpec, featureOutput: string, featureShape: readonly number[], numClasses: number, rng: Rng): { model: ModelSpec; featureDim: number; features: string } {
  const g = model.graph;
  if (!g.nodes.some((n) => n.outputs.includes(featureOutput))) {
    throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}" computes no value "${featureOutput}"; its outputs are ${g.outputs.map((o) => `"${o.name}"`).join(', ')}`);
  }
  const { nodes: kept, needed } = nodesFor(g.nodes, featureOutput);
  const d = featureShape.reduce((a, b) => a * b, 1);
  const nodes: NodeSpec[] = [...kept];
  let z = featureOutput;
  if (featureShape.length !== 1) {
    nodes.push({ opType: 'Flatten', inputs: [featureOutput], outputs: [FEATURES], attributes: { axis: attr.int(1) } });
    z = FEATURES;
  }
  const bound = 1 / Math.sqrt(d);
  const draw = (count: number): Float32Array => Float32Array.from({ length: count }, () => rng.uniform(-bound, bound));
  // torch draws the weight before the bias.
  const head: TensorSpec[] = [
    { name: HEAD_WEIGHT, dataType: 'float32', dims: [numClasses, d], data: draw(numClasses * d) },
    { name: HEAD_BIAS, dataType: 'float32', dims: [numClasses], data: draw(numClasses) },
  ];
  nodes.push({ opType: 'Gemm', inputs: [z, HEAD_WEIGHT, HEAD_BIAS], outputs: [LOGITS], attributes: { transB: attr.int(1) } });
  const initializers = [...(g.initializers ?? []).filter((t) => needed.has(t.name)), ...head];
  const initNames = new Set(initializers.map((t) => t.name));
  const inputs = g.inputs.filter((v) => needed.has(v.name) || initNames.has(v.name));
  const outputs = [
    { name: LOGITS, elemType: 'float32' as const, shape: [g.inputs[0]?.shape[0] ?? 'batch', numClasses] },
    { name: z, elemType: 'float32' as const, shape: [g.inputs[0]?.shape[0] ?? 'batch', d] },
  ];
  return { model: { ...model, graph: { ...g, name: `${g.name}_tuned`, nodes, inputs, outputs, initializers, valueInfo: [] } }, featureDim: d, features: z };
}

/** `model` with initializers replaced by trained values where `weights` has them. */
export function withWeights(model: ModelSpec, weights: Readonly<Record<string, Float32Array>>): ModelSpec {
  const initializers = (model.graph.initializers ?? []).map((t) => (weights[t.name] ? { ...t, data: Float32Array.from(weights[t.name]) } : t));
  return { ...model, graph: { ...model.graph, initializers } };
}
