/**
 * NMTune's regularisers (paper §6.1, eq. 4–7; DESIGN §4) on the features Z of a backbone
 * that trains itself (white-box), as ONNX nodes added to the tuned network so the training
 * graph differentiates them with the cross-entropy (../onnx/autodiff `extraLoss`):
 *
 * - L_MSE (eq. 4) between Z and the pre-trained backbone's features F of the same rows, both
 *   row-normalised; F is fixed, computed once before training and fed per batch already
 *   normalised. `row-mean` (paper) or `element-mean` (the authors' `nn.MSELoss()`).
 * - L_COV (eq. 5): (1/D)·Σ_{i≠j} C(Z)ᵢⱼ² = (1/D)·(‖C‖²_F − Σᵢ Cᵢᵢ²), C over the batch (M − 1).
 * - L_SVD (eq. 6) has no ONNX operator. Its gradient is G = Σⱼ (∂L/∂σⱼ)·uⱼvⱼᵀ, which
 *   ../tuning/losses.ts computes from Z in float64; the graph adds ⟨G, Z⟩ with G fed as a
 *   constant, whose gradient is exactly G. Z for G comes from a forward pass of the same
 *   parameters in training mode (BatchNorm on the batch) just before the step (see
 *   {@link trainModeForward}).
 *
 * Row norms are √(Σz² + 1e-24) rather than torch's max(‖z‖, 1e-12): the same away from zero rows.
 */
import type { TuneTerms } from '../../shared/contract/tuning';
import { attr, type ModelSpec, type NodeSpec, type TensorSpec } from '../onnx/builder';
import { svdTermValueAndGrad } from '../tuning/losses';
import { nodesFor } from './model';

export const NMTUNE_LOSS = 'nmlab.nmtune.loss';
/** Row-normalised pre-trained features of the batch (rows × D). */
export const NMTUNE_TARGET = 'nmlab.nmtune.target';
/** ∂L_SVD/∂Z of the batch (rows × D), from the Z of the training-mode forward pass. */
export const NMTUNE_SVD_GRAD = 'nmlab.nmtune.svd_grad';

/** The model with the weighted NMTune terms on `z` (rows × d) as the scalar {@link NMTUNE_LOSS}. */
export function withNmtuneLoss(model: ModelSpec, z: string, rows: number, d: number, terms: TuneTerms, mseReduction: 'row-mean' | 'element-mean'): ModelSpec {
  const g = model.graph;
  const opset = model.opsetVersion ?? 17;
  const nodes: NodeSpec[] = [...g.nodes];
  const inits: TensorSpec[] = [];
  let k = 0;
  const name = (hint: string): string => `nmlab.nmtune.${hint}.${k++}`;
  const scalar = (v: number): string => {
    const n = name('c');
    inits.push({ name: n, dataType: 'float32', dims: [], data: Float32Array.of(v) });
    return n;
  };
  const op = (opType: string, inputs: string[], attributes?: NodeSpec['attributes']): string => {
    const out = name(opType.toLowerCase());
    nodes.push({ opType, inputs, outputs: [out], ...(attributes ? { attributes } : {}) });
    return out;
  };
  // ReduceSum takes its axes as an input from opset 13, as an attribute before.
  const reduceSum = (x: string, axes: number[], keepdims: boolean): string => {
    if (opset >= 13) {
      const a = name('axes');
      inits.push({ name: a, dataType: 'int64', dims: [axes.length], data: BigInt64Array.from(axes.map(BigInt)) });
      return op('ReduceSum', [x, a], { keepdims: attr.int(keepdims ? 1 : 0) });
    }
    return op('ReduceSum', [x], { axes: attr.ints(axes), keepdims: attr.int(keepdims ? 1 : 0) });
  };

  // Eq. 4
  const norm = op('Sqrt', [op('Add', [reduceSum(op('Mul', [z, z]), [1], true), scalar(1e-24)])]);
  const diff = op('Sub', [op('Div', [z, norm]), NMTUNE_TARGET]);
  const mse = op('Mul', [reduceSum(op('Mul', [diff, diff]), [0, 1], false), scalar(mseReduction === 'row-mean' ? 1 / rows : 1 / (rows * d))]);
  // Eq. 5
  const zc = op('Sub', [z, op('Mul', [reduceSum(z, [0], true), scalar(1 / rows)])]);
  const cov = op('Mul', [op('MatMul', [op('Transpose', [zc], { perm: attr.ints([1, 0]) }), zc]), scalar(1 / Math.max(1, rows - 1))]);
  const diag = op('Mul', [reduceSum(op('Mul', [zc, zc]), [0], false), scalar(1 / Math.max(1, rows - 1))]);
  const offDiag = op('Sub', [reduceSum(op('Mul', [cov, cov]), [0, 1], false), reduceSum(op('Mul', [diag, diag]), [0], false)]);
  const covTerm = op('Mul', [offDiag, scalar(1 / d)]);
  // Eq. 6 through its gradient
  const svd = reduceSum(op('Mul', [z, NMTUNE_SVD_GRAD]), [0, 1], false);
  const total = op('Add', [op('Add', [op('Mul', [mse, scalar(terms.mse)]), op('Mul', [covTerm, scalar(terms.cov)])]), op('Mul', [svd, scalar(terms.svd)])]);
  nodes.push({ opType: 'Identity', inputs: [total], outputs: [NMTUNE_LOSS] });
  return {
    ...model,
    graph: {
      ...g,
      nodes,
      inputs: [...g.inputs, { name: NMTUNE_TARGET, elemType: 'float32', shape: [rows, d] }, { name: NMTUNE_SVD_GRAD, elemType: 'float32', shape: [rows, d] }],
      initializers: [...(g.initializers ?? []), ...inits],
    },
  };
}

/**
 * The part of `model` that computes `z`, with BatchNorm on the batch's statistics (biased
 * variance, as the training graph normalises) and the parameters `params` as inputs, so a
 * session can run it on the current weights of a training step.
 */
export function trainModeForward(model: ModelSpec, z: string, params: readonly string[]): ModelSpec {
  const g = model.graph;
  const { nodes: kept, needed } = nodesFor(g.nodes, z);
  const opset = model.opsetVersion ?? 17;
  const inits: TensorSpec[] = [];
  const nodes: NodeSpec[] = [];
  let k = 0;
  for (const n of kept) {
    if (n.opType !== 'BatchNormalization') {
      nodes.push(n);
      continue;
    }
    const [x, gamma, beta] = n.inputs;
    const p = `nmlab.bn_batch.${k++}`;
    const shape = `${p}.shape`;
    const grouped = `${p}.grouped`;
    inits.push({ name: shape, dataType: 'int64', dims: [1], data: BigInt64Array.of(-1n) });
    inits.push({ name: grouped, dataType: 'int64', dims: [3], data: BigInt64Array.of(0n, 0n, -1n) });
    // Statistics per channel (axis 1) over every other axis, whatever the rank: x viewed as
    // N×C×rest, mean over axes 0 and 2.
    nodes.push({ opType: 'Reshape', inputs: [x, grouped], outputs: [`${p}.x3`] });
    const mean = (v: string, out: string): void => {
      const axesName = `${out}.axes`;
      const axes = [0, 2];
      if (opset >= 18) {
        inits.push({ name: axesName, dataType: 'int64', dims: [2], data: BigInt64Array.from(axes.map(BigInt)) });
        nodes.push({ opType: 'ReduceMean', inputs: [v, axesName], outputs: [out], attributes: { keepdims: attr.int(1) } });
      } else nodes.push({ opType: 'ReduceMean', inputs: [v], outputs: [out], attributes: { axes: attr.ints(axes), keepdims: attr.int(1) } });
    };
    mean(`${p}.x3`, `${p}.mean`);
    nodes.push({ opType: 'Sub', inputs: [`${p}.x3`, `${p}.mean`], outputs: [`${p}.xc`] });
    nodes.push({ opType: 'Mul', inputs: [`${p}.xc`, `${p}.xc`], outputs: [`${p}.sq`] });
    mean(`${p}.sq`, `${p}.var`);
    nodes.push({ opType: 'Reshape', inputs: [`${p}.mean`, shape], outputs: [`${p}.mean1`] });
    nodes.push({ opType: 'Reshape', inputs: [`${p}.var`, shape], outputs: [`${p}.var1`] });
    nodes.push({ ...n, inputs: [x, gamma, beta, `${p}.mean1`, `${p}.var1`], outputs: [n.outputs[0]] });
  }
  const paramSet = new Set(params.filter((q) => needed.has(q)));
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = [...(g.initializers ?? []).filter((t) => used.has(t.name) && !paramSet.has(t.name)), ...inits];
  const byName = new Map((g.initializers ?? []).map((t) => [t.name, t]));
  const inputs = [
    ...g.inputs.filter((v) => used.has(v.name) && !byName.has(v.name)),
    ...[...paramSet].map((q) => ({ name: q, elemType: 'float32' as const, shape: [...(byName.get(q)?.dims ?? [])] })),
  ];
  return { ...model, graph: { ...g, name: `${g.name}_z`, nodes, inputs, outputs: [{ name: z, elemType: 'float32', shape: [null, null] }], initializers, valueInfo: [] } };
}

/**
 * The auxiliary inputs of one step from the batch's Z (rows × d, training-mode forward with
 * the current weights) and its rows' normalised pre-trained features: G = ∂L_SVD/∂Z, and how
 * far the graph's loss, which holds ⟨G, Z⟩ for L_SVD, is from the true one (add
 * `terms.svd · svdOffset` to it).
 */
export function nmtuneAux(z: Float32Array, rows: number, d: number, topK: number, target: Float32Array): { aux: Record<string, Float32Array>; svdValue: number; svdOffset: number } {
  const svd = svdTermValueAndGrad(z, rows, d, topK);
  const grad = Float32Array.from(svd.grad);
  let dot = 0;
  for (let i = 0; i < grad.length; i++) dot += grad[i] * z[i];
  return { aux: { [NMTUNE_TARGET]: target, [NMTUNE_SVD_GRAD]: grad }, svdValue: svd.value, svdOffset: svd.value - dot };
}
