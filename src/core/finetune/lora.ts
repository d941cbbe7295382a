/**
 * LoRA (Hu et al. 2021) inserted into an ONNX graph: beside a frozen weight W, a rank-r
 * product ΔW = s·B·A with A drawn like torch's kaiming_uniform(a=√5), i.e. U(±1/√fan_in), and
 * B = 0, so the tuned network starts as the backbone. The authors tune "rank via reduction
 * ratio 8 on the MLP blocks" (DESIGN §4); NMLab adapts every Conv (group 1) and linear
 * (Gemm, MatMul with a weight initializer) of the backbone.
 *
 * - Conv(x, W): + s·Conv(Conv(x, A), B) with A: r×I×kh×kw (same strides, pads, dilations)
 *   and B: O×r×1×1. A 1×1 stride-1 conv after a conv is the conv with the product kernel, so
 *   merging gives exactly W + s·(B·A).
 * - Gemm(X, W) (transA = 0) and MatMul(X, W): + s·(X·A)·B with A: in×r, B: r×out; merging adds
 *   s·A·B to op(W) (divided by Gemm's alpha, transposed for transB = 1).
 */
import { NmlabError } from '../../shared/errors';
import { type AttrValue, type ModelSpec, type NodeSpec, type TensorSpec } from '../onnx/builder';
import type { Rng } from '../tuning/rng';

export interface LoraAdapter {
  /** The frozen weight initializer this adapter sits beside. */
  weight: string;
  kind: 'conv' | 'linear';
  down: string;
  up: string;
  rank: number;
  /** s = α/r. */
  scale: number;
  /** Linear weights: the weight is stored out×in (Gemm transB = 1). */
  transposed: boolean;
  /** Gemm's alpha, which multiplies the weight's product too. */
  gemmAlpha: number;
}

export interface LoraOptions {
  /** Fixed rank; null: output width / reduction, at least 1 (never above min(out, fan_in)). */
  rank: number | null;
  reduction: number;
  /** null: α = r. */
  alpha: number | null;
  rng: Rng;
  /** Weights left without an adapter (e.g. the new head, which trains fully). */
  exclude?: ReadonlySet<string>;
}

function intAttr(n: NodeSpec, name: string, dflt: number): number {
  const a = n.attributes?.[name];
  return a && a.type === 'int' ? Number(a.value) : dflt;
}

function floatAttr(n: NodeSpec, name: string, dflt: number): number {
  const a = n.attributes?.[name];
  return a && a.type === 'float' ? a.value : dflt;
}

function uniform(rng: Rng, count: number, bound: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.uniform(-bound, bound);
  return out;
}

/**
 * The backbone with adapters added (its nodes and initializers otherwise unchanged) and the
 * list of adapters. Throws when the model has no weight LoRA can adapt.
 */
export function insertLora(model: ModelSpec, opts: LoraOptions): { model: ModelSpec; adapters: LoraAdapter[] } {
  const g = model.graph;
  const inits = new Map((g.initializers ?? []).map((t) => [t.name, t]));
  const nodes: NodeSpec[] = [];
  const added: TensorSpec[] = [];
  const adapters: LoraAdapter[] = [];
  const rankFor = (out: number, fanIn: number): number => Math.max(1, Math.min(opts.rank ?? Math.round(out / opts.reduction), out, fanIn));
  for (const n of g.nodes) {
    const w = inits.get(n.inputs[1] ?? '');
    const isConv = n.opType === 'Conv' && intAttr(n, 'group', 1) === 1 && w?.dims.length === 4;
    const isGemm = n.opType === 'Gemm' && intAttr(n, 'transA', 0) === 0 && w?.dims.length === 2;
    const isMatMul = n.opType === 'MatMul' && w?.dims.length === 2;
    if (!w || w.dataType !== 'float32' || !(isConv || isGemm || isMatMul) || opts.exclude?.has(w.name)) {
      nodes.push(n);
      continue;
    }
    const out = n.outputs[0];
    const base = `${out}.lora_base`;
    const down = `lora.${w.name}.A`;
    const up = `lora.${w.name}.B`;
    const mid = `${out}.lora_mid`;
    const delta = `${out}.lora_delta`;
    nodes.push({ ...n, outputs: [base, ...n.outputs.slice(1)] });
    let adapter: LoraAdapter;
    if (isConv) {
      const [o, i, kh, kw] = w.dims;
      const rank = rankFor(o, i * kh * kw);
      const keep: Record<string, AttrValue> = {};
      for (const k of ['kernel_shape', 'strides', 'pads', 'dilations', 'auto_pad'] as const) {
        const a = n.attributes?.[k];
        if (a) keep[k] = a;
      }
      added.push({ name: down, dataType: 'float32', dims: [rank, i, kh, kw], data: uniform(opts.rng, rank * i * kh * kw, 1 / Math.sqrt(i * kh * kw)) });
      added.push({ name: up, dataType: 'float32', dims: [o, rank, 1, 1], data: new Float32Array(o * rank) });
      nodes.push({ opType: 'Conv', inputs: [n.inputs[0], down], outputs: [mid], attributes: keep });
      nodes.push({ opType: 'Conv', inputs: [mid, up], outputs: [delta] });
      adapter = { weight: w.name, kind: 'conv', down, up, rank, scale: (opts.alpha ?? rank) / rank, transposed: false, gemmAlpha: 1 };
    } else {
      const transposed = isGemm && intAttr(n, 'transB', 0) === 1;
      const [fanIn, width] = transposed ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
      const rank = rankFor(width, fanIn);
      added.push({ name: down, dataType: 'float32', dims: [fanIn, rank], data: uniform(opts.rng, fanIn * rank, 1 / Math.sqrt(fanIn)) });
      added.push({ name: up, dataType: 'float32', dims: [rank, width], data: new Float32Array(rank * width) });
      nodes.push({ opType: 'MatMul', inputs: [n.inputs[0], down], outputs: [mid] });
      nodes.push({ opType: 'MatMul', inputs: [mid, up], outputs: [delta] });
      adapter = { weight: w.name, kind: 'linear', down, up, rank, scale: (opts.alpha ?? rank) / rank, transposed, gemmAlpha: isGemm ? floatAttr(n, 'alpha', 1) : 1 };
    }
    if (adapter.scale !== 1) {
      const scaled = `${out}.lora_scaled`;
      const s = `${out}.lora_scale`;
      added.push({ name: s, dataType: 'float32', dims: [], data: Float32Array.of(adapter.scale) });
      nodes.push({ opType: 'Mul', inputs: [delta, s], outputs: [scaled] });
      nodes.push({ opType: 'Add', inputs: [base, scaled], outputs: [out] });
    } else {
      nodes.push({ opType: 'Add', inputs: [base, delta], outputs: [out] });
    }
    adapters.push(adapter);
  }
  if (adapters.length === 0) throw new NmlabError('UNSUPPORTED', `ONNX model "${g.name}" has no Conv (group 1), Gemm or MatMul weight for LoRA to adapt; use --method ft`);
  return { model: { ...model, graph: { ...g, nodes, initializers: [...(g.initializers ?? []), ...added] } }, adapters };
}

/** ΔW of one adapter in W's own layout, already divided by Gemm's alpha. */
export function loraDelta(a: LoraAdapter, down: Float32Array, up: Float32Array, weightDims: readonly number[]): Float32Array {
  const r = a.rank;
  const s = a.scale / a.gemmAlpha;
  if (a.kind === 'conv') {
    // ΔW[o, ·] = s·Σ_k B[o, k]·A[k, ·]
    const o = weightDims[0];
    const per = down.length / r;
    const out = new Float32Array(o * per);
    for (let i = 0; i < o; i++) {
      for (let k = 0; k < r; k++) {
        const b = s * up[i * r + k];
        if (b === 0) continue;
        for (let j = 0; j < per; j++) out[i * per + j] += b * down[k * per + j];
      }
    }
    return out;
  }
  // A: in×r, B: r×out; (A·B)[in, out], stored transposed (out×in) for transB = 1.
  const [fanIn, width] = a.transposed ? [weightDims[1], weightDims[0]] : [weightDims[0], weightDims[1]];
  const out = new Float32Array(fanIn * width);
  for (let i = 0; i < fanIn; i++) {
    for (let k = 0; k < r; k++) {
      const d = s * down[i * r + k];
      if (d === 0) continue;
      for (let j = 0; j < width; j++) {
        const at = a.transposed ? j * fanIn + i : i * width + j;
        out[at] += d * up[k * width + j];
      }
    }
  }
  return out;
}

/**
 * The model without adapters (`base`, as before {@link insertLora}) whose initializers take
 * the trained values in `weights` (head, BatchNorm statistics, ...) and whose adapted weights
 * become W + ΔW: the network the adapters computed, as a plain ONNX model.
 */
export function mergeLora(base: ModelSpec, adapters: readonly LoraAdapter[], weights: Readonly<Record<string, Float32Array>>): ModelSpec {
  const byWeight = new Map(adapters.map((a) => [a.weight, a]));
  const initializers = (base.graph.initializers ?? []).map((t) => {
    const trained = weights[t.name];
    let data = trained ? Float32Array.from(trained) : t.data;
    const a = byWeight.get(t.name);
    if (a) {
      const down = weights[a.down];
      const up = weights[a.up];
      if (!down || !up) throw new NmlabError('INTERNAL', `LoRA merge: no trained values for the adapter of "${t.name}"`);
      const delta = loraDelta(a, down, up, t.dims);
      const merged = Float32Array.from(data as Float32Array);
      for (let i = 0; i < merged.length; i++) merged[i] += delta[i];
      data = merged;
    }
    return data === t.data ? t : { ...t, data };
  });
  return { ...base, graph: { ...base.graph, initializers } };
}
