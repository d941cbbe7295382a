/**
 * Static shape inference (and folding of small integer constants, such as the Shape →
 * Gather → Concat → Reshape chains PyTorch exports) for a forward graph at a fixed batch
 * size. The gradient rules need every forward shape: ConvTranspose's output padding,
 * the axes a broadcast gradient sums over, the shape a Reshape's gradient restores.
 */
import { NmlabError } from '../../../shared/errors';
import type { AttrValue, GraphSpec, NodeSpec, TensorSpec } from '../builder';
import { broadcastShapes, size, type GraphWriter, type Shape } from './writer';

/** Known small constant values (int64 or float), C order. */
export type ConstValues = Map<string, { dims: Shape; values: number[] }>;

/** The values `targets` depend on, themselves included: `nodes` (in topological order) walked backwards. */
export function upstreamValues(nodes: readonly NodeSpec[], targets: Iterable<string>): Set<string> {
  const reached = new Set(targets);
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (nodes[i].outputs.some((o) => reached.has(o))) for (const inp of nodes[i].inputs) if (inp) reached.add(inp);
  }
  return reached;
}

export function attrInt(n: NodeSpec, name: string, dflt: number): number {
  const a = n.attributes?.[name];
  return a && a.type === 'int' ? Number(a.value) : dflt;
}

export function attrFloat(n: NodeSpec, name: string, dflt: number): number {
  const a = n.attributes?.[name];
  return a && a.type === 'float' ? a.value : dflt;
}

export function attrInts(n: NodeSpec, name: string): number[] | undefined {
  const a = n.attributes?.[name];
  return a && a.type === 'ints' ? a.value.map(Number) : undefined;
}

export function attrString(n: NodeSpec, name: string, dflt: string): string {
  const a = n.attributes?.[name];
  return a && a.type === 'string' ? a.value : dflt;
}

function tensorValues(t: TensorSpec): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** Spatial geometry of a Conv / pooling node: kernel, strides, pads [begin…, end…], dilations. */
export interface Window {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
}

export function windowOf(n: NodeSpec, inShape: Shape, kernel: number[], ceil = false): Window {
  const r = kernel.length;
  const strides = attrInts(n, 'strides') ?? new Array<number>(r).fill(1);
  const dilations = attrInts(n, 'dilations') ?? new Array<number>(r).fill(1);
  let pads = attrInts(n, 'pads') ?? new Array<number>(2 * r).fill(0);
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = new Array<number>(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const inp = inShape[2 + i];
      const out = Math.ceil(inp / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inp);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i];
    }
  }
  void ceil;
  return { kernel, strides, pads, dilations };
}

export function windowOut(inp: number, w: Window, i: number, ceil: boolean): number {
  const r = w.kernel.length;
  const span = (w.kernel[i] - 1) * w.dilations[i] + 1;
  const num = inp + w.pads[i] + w.pads[i + r] - span;
  let out = (ceil ? Math.ceil(num / w.strides[i]) : Math.floor(num / w.strides[i])) + 1;
  // ceil mode: the last window must start inside the input or its begin padding
  if (ceil && (out - 1) * w.strides[i] >= inp + w.pads[i]) out--;
  return out;
}

/** Axes of a node given by attribute (old opsets) or by its input `idx` (newer opsets). */
export function axesOf(n: NodeSpec, idx: number, consts: ConstValues): number[] | undefined {
  const fromAttr = attrInts(n, 'axes');
  if (fromAttr) return fromAttr;
  const name = n.inputs[idx];
  if (!name) return undefined;
  const c = consts.get(name);
  if (!c) throw new NmlabError('UNSUPPORTED', `ONNX node "${n.name ?? n.opType}" (${n.opType}): its axes input "${name}" is computed at run time; NMLab needs constant axes`);
  return c.values;
}

function constOf(consts: ConstValues, n: NodeSpec, i: number): number[] {
  const c = consts.get(n.inputs[i]);
  if (!c) throw new NmlabError('UNSUPPORTED', `ONNX node "${n.name ?? n.opType}" (${n.opType}): input "${n.inputs[i]}" must be a constant (or computable from shapes) for NMLab to differentiate the graph`);
  return c.values;
}

/** Evaluates small constant computations (shape arithmetic) where every input is known. */
function fold(n: NodeSpec, w: GraphWriter, consts: ConstValues): void {
  const out = n.outputs[0];
  const ins = n.inputs.map((i) => (i ? consts.get(i) : undefined));
  const set = (dims: Shape, values: number[]): void => {
    consts.set(out, { dims, values });
  };
  switch (n.opType) {
    case 'Shape': {
      const s = w.shape(n.inputs[0]);
      const start = attrInt(n, 'start', 0);
      const endA = n.attributes?.end ? attrInt(n, 'end', s.length) : s.length;
      const norm = (v: number): number => Math.min(s.length, Math.max(0, v < 0 ? v + s.length : v));
      const vals = s.slice(norm(start), norm(endA));
      set([vals.length], [...vals]);
      return;
    }
    case 'Constant': {
      const a = n.attributes?.value;
      if (a?.type === 'tensor' && a.value.dims.reduce((p, q) => p * q, 1) <= 64 && a.value.dataType !== 'float16') set(a.value.dims, tensorValues(a.value));
      else if (n.attributes?.value_ints?.type === 'ints') set([n.attributes.value_ints.value.length], n.attributes.value_ints.value.map(Number));
      else if (n.attributes?.value_int?.type === 'int') set([], [Number(n.attributes.value_int.value)]);
      else if (n.attributes?.value_float?.type === 'float') set([], [n.attributes.value_float.value]);
      return;
    }
  }
  if (ins.some((c, i) => n.inputs[i] && !c)) return;
  const a = ins[0];
  if (!a) return;
  switch (n.opType) {
    case 'Identity':
    case 'Cast':
      set(a.dims, a.values);
      return;
    case 'Gather': {
      const idx = (ins[1] as { dims: Shape; values: number[] }).values;
      if (a.dims.length !== 1) return;
      set((ins[1] as { dims: Shape }).dims, idx.map((i) => a.values[i < 0 ? i + a.values.length : i]));
      return;
    }
    case 'Unsqueeze':
    case 'Squeeze':
    case 'Reshape':
    case 'Flatten':
      set(w.shape(out), a.values);
      return;
    case 'Concat':
      set([ins.reduce((p, c) => p + (c?.values.length ?? 0), 0)], ins.flatMap((c) => c?.values ?? []));
      return;
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      const b = ins[1] as { dims: Shape; values: number[] };
      const nOut = Math.max(a.values.length, b.values.length);
      const f = (x: number, y: number): number => (n.opType === 'Add' ? x + y : n.opType === 'Sub' ? x - y : n.opType === 'Mul' ? x * y : Math.trunc(x / y));
      set(a.dims.length >= b.dims.length ? a.dims : b.dims, Array.from({ length: nOut }, (_, i) => f(a.values[a.values.length === 1 ? 0 : i], b.values[b.values.length === 1 ? 0 : i])));
      return;
    }
    case 'Equal': {
      const b = ins[1] as { dims: Shape; values: number[] };
      const nOut = Math.max(a.values.length, b.values.length);
      set(a.dims.length >= b.dims.length ? a.dims : b.dims, Array.from({ length: nOut }, (_, i) => (a.values[a.values.length === 1 ? 0 : i] === b.values[b.values.length === 1 ? 0 : i] ? 1 : 0)));
      return;
    }
    case 'Where': {
      const [x, y] = [ins[1], ins[2]] as { dims: Shape; values: number[] }[];
      const nOut = Math.max(a.values.length, x.values.length, y.values.length);
      const at = (v: number[], i: number): number => v[v.length === 1 ? 0 : i];
      set([nOut], Array.from({ length: nOut }, (_, i) => (at(a.values, i) ? at(x.values, i) : at(y.values, i))));
      return;
    }
    case 'ConstantOfShape': {
      const v = n.attributes?.value;
      const fill = v?.type === 'tensor' ? Number((v.value.data as ArrayLike<number | bigint>)[0]) : 0;
      const count = a.values.reduce((p, q) => p * q, 1);
      if (count <= 64) set(a.values, new Array<number>(count).fill(fill));
      return;
    }
    case 'Slice': {
      if (a.dims.length !== 1) return;
      const starts = (ins[1] as { values: number[] }).values[0];
      const ends = (ins[2] as { values: number[] }).values[0];
      const len = a.values.length;
      const clamp = (v: number): number => Math.min(len, Math.max(0, v < 0 ? v + len : v));
      set([Math.max(0, clamp(ends) - clamp(starts))], a.values.slice(clamp(starts), clamp(ends)));
      return;
    }
  }
}

/**
 * Records the shape and type of every value of `g` in `w`, given the concrete shapes of its
 * (non-initializer) inputs; folds small constants into `consts`.
 */
export function inferShapes(g: GraphSpec, inputShapes: Record<string, Shape>, w: GraphWriter, consts: ConstValues): void {
  for (const t of g.initializers ?? []) {
    w.shapes.set(t.name, t.dims);
    w.types.set(t.name, t.dataType);
    if (t.data.length <= 64 && t.dataType !== 'float16') consts.set(t.name, { dims: t.dims, values: tensorValues(t) });
  }
  for (const v of g.inputs) {
    if (w.shapes.has(v.name)) continue;
    const s = inputShapes[v.name] ?? v.shape.map((d) => (typeof d === 'number' ? d : NaN));
    if (s.some((d) => !Number.isInteger(d))) throw new NmlabError('BAD_REQUEST', `ONNX input "${v.name}" has dimensions [${v.shape.join(', ')}] that are not fixed; give its concrete shape (inputShape)`);
    w.shapes.set(v.name, s);
    w.types.set(v.name, v.elemType);
  }
  for (const n of g.nodes) {
    const shapes = nodeShapes(n, w, consts);
    n.outputs.forEach((o, i) => {
      if (!o) return;
      w.shapes.set(o, shapes[i]?.shape ?? []);
      w.types.set(o, shapes[i]?.type ?? 'float32');
    });
    fold(n, w, consts);
  }
}

type Out = { shape: Shape; type: import('../builder').OnnxElemType };

function nodeShapes(n: NodeSpec, w: GraphWriter, consts: ConstValues): Out[] {
  const s = (i: number): Shape => w.shape(n.inputs[i]);
  const t0 = n.inputs[0] ? w.types.get(n.inputs[0]) ?? 'float32' : 'float32';
  const same = (): Out[] => [{ shape: s(0), type: t0 }];
  const label = `ONNX node "${n.name ?? n.outputs[0]}" (${n.opType})`;
  switch (n.opType) {
    case 'Relu': case 'LeakyRelu': case 'Clip': case 'HardSigmoid': case 'HardSwish': case 'Sigmoid': case 'Tanh': case 'Erf':
    case 'Gelu': case 'Sqrt': case 'Exp': case 'Log': case 'Neg': case 'Reciprocal': case 'Abs': case 'Identity': case 'Softmax':
    case 'LogSoftmax': case 'Not': case 'Floor': case 'Ceil': case 'Sign':
      return same();
    case 'Dropout':
      return [{ shape: s(0), type: t0 }, { shape: s(0), type: 'bool' }];
    case 'Cast':
      return [{ shape: s(0), type: castType(attrInt(n, 'to', 1)) }];
    case 'BatchNormalization':
      return [{ shape: s(0), type: t0 }, { shape: s(1), type: t0 }, { shape: s(1), type: t0 }];
    case 'LayerNormalization': {
      const axis = attrInt(n, 'axis', -1);
      const r = s(0).length;
      const ax = axis < 0 ? axis + r : axis;
      const stat = s(0).map((d, i) => (i < ax ? d : 1));
      return [{ shape: s(0), type: t0 }, { shape: stat, type: t0 }, { shape: stat, type: t0 }];
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow': case 'Max': case 'Min':
      return [{ shape: broadcastShapes(s(0), s(1)), type: t0 }];
    case 'Equal': case 'Greater': case 'Less': case 'GreaterOrEqual': case 'LessOrEqual': case 'And': case 'Or':
      return [{ shape: broadcastShapes(s(0), s(1)), type: 'bool' }];
    case 'Where':
      return [{ shape: broadcastShapes(broadcastShapes(s(0), s(1)), s(2)), type: w.types.get(n.inputs[1]) ?? 'float32' }];
    case 'Conv': {
      const x = s(0);
      const wt = s(1);
      const win = windowOf(n, x, attrInts(n, 'kernel_shape') ?? wt.slice(2));
      return [{ shape: [x[0], wt[0], ...win.kernel.map((_, i) => windowOut(x[2 + i], win, i, false))], type: t0 }];
    }
    case 'MaxPool': case 'AveragePool': {
      const x = s(0);
      const k = attrInts(n, 'kernel_shape') ?? [];
      const ceil = attrInt(n, 'ceil_mode', 0) === 1;
      const win = windowOf(n, x, k, ceil);
      const out = [x[0], x[1], ...k.map((_, i) => windowOut(x[2 + i], win, i, ceil))];
      return [{ shape: out, type: t0 }, { shape: out, type: 'int64' }];
    }
    case 'GlobalAveragePool': case 'GlobalMaxPool':
      return [{ shape: s(0).map((d, i) => (i < 2 ? d : 1)), type: t0 }];
    case 'Flatten': {
      const x = s(0);
      const axis = attrInt(n, 'axis', 1);
      const ax = axis < 0 ? axis + x.length : axis;
      return [{ shape: [size(x.slice(0, ax)), size(x.slice(ax))], type: t0 }];
    }
    case 'Reshape': {
      const x = s(0);
      const target = constOf(consts, n, 1);
      const allowZero = attrInt(n, 'allowzero', 0) === 1;
      const out = target.map((d, i) => (d === 0 && !allowZero ? x[i] : d));
      const known = out.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
      return [{ shape: out.map((d) => (d === -1 ? size(x) / known : d)), type: t0 }];
    }
    case 'Squeeze': {
      const x = s(0);
      const axes = (axesOf(n, 1, consts) ?? x.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => (a < 0 ? a + x.length : a));
      return [{ shape: x.filter((_, i) => !axes.includes(i)), type: t0 }];
    }
    case 'Unsqueeze': {
      const x = [...s(0)];
      const axes = axesOf(n, 1, consts) ?? [];
      const r = x.length + axes.length;
      for (const a of axes.map((v) => (v < 0 ? v + r : v)).sort((p, q) => p - q)) x.splice(a, 0, 1);
      return [{ shape: x, type: t0 }];
    }
    case 'Gemm': {
      const a = s(0);
      const b = s(1);
      const m = attrInt(n, 'transA', 0) ? a[1] : a[0];
      const nn = attrInt(n, 'transB', 0) ? b[0] : b[1];
      return [{ shape: [m, nn], type: t0 }];
    }
    case 'MatMul': {
      const a = s(0);
      const b = s(1);
      if (a.length < 2 || b.length < 2) throw new NmlabError('UNSUPPORTED', `${label}: MatMul with a 1-D operand is not supported`);
      const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
      return [{ shape: [...batch, a[a.length - 2], b[b.length - 1]], type: t0 }];
    }
    case 'Transpose': {
      const x = s(0);
      const perm = attrInts(n, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      return [{ shape: perm.map((p) => x[p]), type: t0 }];
    }
    case 'Concat': {
      const x = s(0);
      const axis = attrInt(n, 'axis', 0);
      const ax = axis < 0 ? axis + x.length : axis;
      const total = n.inputs.reduce((p, i) => p + w.shape(i)[ax], 0);
      return [{ shape: x.map((d, i) => (i === ax ? total : d)), type: t0 }];
    }
    case 'Split': {
      const x = s(0);
      const axis = attrInt(n, 'axis', 0);
      const ax = axis < 0 ? axis + x.length : axis;
      let sizes = attrInts(n, 'split') ?? (n.inputs[1] ? constOf(consts, n, 1) : undefined);
      if (!sizes) {
        const k = attrInt(n, 'num_outputs', n.outputs.length);
        const each = Math.ceil(x[ax] / k);
        sizes = Array.from({ length: k }, (_, i) => Math.min(each, x[ax] - each * i));
      }
      return sizes.map((d) => ({ shape: x.map((v, i) => (i === ax ? d : v)), type: t0 }));
    }
    case 'Slice': {
      const p = sliceParams(n, s(0), consts);
      return [{ shape: p.outShape, type: t0 }];
    }
    case 'Gather': {
      const x = s(0);
      const axis = attrInt(n, 'axis', 0);
      const ax = axis < 0 ? axis + x.length : axis;
      return [{ shape: [...x.slice(0, ax), ...s(1), ...x.slice(ax + 1)], type: t0 }];
    }
    case 'ReduceMean': case 'ReduceSum': case 'ReduceMax': case 'ReduceMin': {
      const x = s(0);
      const keep = attrInt(n, 'keepdims', 1) === 1;
      const axes = (axesOf(n, 1, consts) ?? (attrInt(n, 'noop_with_empty_axes', 0) ? [] : x.map((_, i) => i))).map((a) => (a < 0 ? a + x.length : a));
      return [{ shape: keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i)), type: t0 }];
    }
    case 'ArgMax': case 'ArgMin': {
      const x = s(0);
      const axis = attrInt(n, 'axis', 0);
      const ax = axis < 0 ? axis + x.length : axis;
      const keep = attrInt(n, 'keepdims', 1) === 1;
      return [{ shape: keep ? x.map((d, i) => (i === ax ? 1 : d)) : x.filter((_, i) => i !== ax), type: 'int64' }];
    }
    case 'Shape': {
      const c = consts.get(n.outputs[0]);
      return [{ shape: [c ? c.values.length : s(0).length], type: 'int64' }];
    }
    case 'Constant': {
      const a: AttrValue | undefined = n.attributes?.value;
      if (a?.type === 'tensor') return [{ shape: a.value.dims, type: a.value.dataType }];
      if (n.attributes?.value_ints?.type === 'ints') return [{ shape: [n.attributes.value_ints.value.length], type: 'int64' }];
      if (n.attributes?.value_int) return [{ shape: [], type: 'int64' }];
      return [{ shape: [], type: 'float32' }];
    }
    case 'ConstantOfShape': {
      const v = n.attributes?.value;
      return [{ shape: constOf(consts, n, 0), type: v?.type === 'tensor' ? v.value.dataType : 'float32' }];
    }
    case 'Expand':
      return [{ shape: broadcastShapes(s(0), constOf(consts, n, 1)), type: t0 }];
    case 'Pad': {
      const x = s(0);
      const pads = attrInts(n, 'pads') ?? constOf(consts, n, 1);
      return [{ shape: x.map((d, i) => d + pads[i] + pads[i + x.length]), type: t0 }];
    }
    default:
      throw new NmlabError('UNSUPPORTED', `NMLab cannot differentiate operator ${n.opType} (node "${n.name ?? n.outputs[0]}"): the first operator of this model it has no shape or gradient rule for`);
  }
}

function castType(code: number): import('../builder').OnnxElemType {
  return ({ 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' } as const)[code as 1] ?? 'float32';
}

/** Normalised Slice parameters (opset ≥ 10 inputs, or opset < 10 attributes). */
export function sliceParams(n: NodeSpec, x: Shape, consts: ConstValues): { starts: number[]; ends: number[]; axes: number[]; steps: number[]; outShape: number[] } {
  const starts0 = attrInts(n, 'starts') ?? constOf(consts, n, 1);
  const ends0 = attrInts(n, 'ends') ?? constOf(consts, n, 2);
  const axes0 = attrInts(n, 'axes') ?? (n.inputs[3] ? constOf(consts, n, 3) : starts0.map((_, i) => i));
  const steps0 = n.inputs[4] ? constOf(consts, n, 4) : starts0.map(() => 1);
  const outShape = [...x];
  const starts: number[] = [];
  const ends: number[] = [];
  const axes = axes0.map((a) => (a < 0 ? a + x.length : a));
  axes.forEach((ax, i) => {
    const d = x[ax];
    const step = steps0[i];
    const clampS = (v: number): number => (step > 0 ? Math.min(d, Math.max(0, v)) : Math.min(d - 1, Math.max(-1, v)));
    const st = clampS(starts0[i] < 0 ? starts0[i] + d : starts0[i]);
    const en = clampS(ends0[i] < 0 ? ends0[i] + d : ends0[i]);
    starts.push(st);
    ends.push(en);
    outShape[ax] = Math.max(0, Math.ceil((en - st) / step));
  });
  return { starts, ends, axes, steps: steps0, outShape };
}
