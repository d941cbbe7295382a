/**
 * The node list a training graph is built into: fresh value names, deduplicated constants,
 * and the opset-dependent spelling of the few operators whose axes moved from attributes to
 * inputs (ReduceSum/Squeeze/Unsqueeze/Split at opset 13, ReduceMean/ReduceMax at 18).
 * Every value the writer creates gets its static shape recorded, so gradient rules can ask
 * for the shape of anything (shapes.ts fills in the forward values).
 */
import { attr, type AttrValue, type NodeSpec, type OnnxElemType, type TensorSpec } from '../builder';

export type Shape = readonly number[];

export class GraphWriter {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  readonly shapes = new Map<string, Shape>();
  readonly types = new Map<string, OnnxElemType>();
  private readonly constNames = new Map<string, string>();
  private counter = 0;

  constructor(readonly opset: number) {}

  fresh(hint: string): string {
    return `ad/${hint}_${this.counter++}`;
  }

  /** Outputs of earlier nodes by their operator, inputs and attributes (common subexpressions). */
  private readonly memo = new Map<string, string>();

  /**
   * Adds a node with one output of the given shape (and type, float32 by default). A node
   * identical to an earlier one (same operator, inputs, attributes) is not added again: its
   * output is reused, e.g. the one transpose of a block input both its convolutions'
   * weight gradients need.
   */
  op(opType: string, inputs: readonly string[], shape: Shape, attributes?: Record<string, AttrValue>, opts: { out?: string; type?: OnnxElemType } = {}): string {
    const key = opts.out ? '' : `${opType}|${inputs.join(',')}|${JSON.stringify(attributes ?? {}, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`;
    const known = key ? this.memo.get(key) : undefined;
    if (known && opType !== 'ConstantOfShape') return known;
    const out = opts.out ?? this.fresh(opType.toLowerCase());
    if (key) this.memo.set(key, out);
    this.nodes.push({ opType, inputs, outputs: [out], ...(attributes ? { attributes } : {}) });
    this.shapes.set(out, shape);
    this.types.set(out, opts.type ?? 'float32');
    return out;
  }

  /** Adds a node with several outputs (shapes given per output). */
  opN(opType: string, inputs: readonly string[], shapes: readonly Shape[], attributes?: Record<string, AttrValue>): string[] {
    const outs = shapes.map(() => this.fresh(opType.toLowerCase()));
    this.nodes.push({ opType, inputs, outputs: outs, ...(attributes ? { attributes } : {}) });
    outs.forEach((o, i) => {
      this.shapes.set(o, shapes[i]);
      this.types.set(o, 'float32');
    });
    return outs;
  }

  shape(name: string): Shape {
    const s = this.shapes.get(name);
    if (!s) throw new Error(`autodiff: no shape recorded for "${name}"`);
    return s;
  }

  /** A constant initializer, shared between uses with the same contents. */
  constant(type: OnnxElemType, dims: Shape, values: readonly number[]): string {
    const key = `${type}|${dims.join(',')}|${values.join(',')}`;
    const known = this.constNames.get(key);
    if (known) return known;
    const name = `ad/const_${this.constNames.size}`;
    const data = type === 'int64' ? BigInt64Array.from(values.map((v) => BigInt(v))) : type === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
    this.initializers.push({ name, dataType: type, dims, data });
    this.constNames.set(key, name);
    this.shapes.set(name, dims);
    this.types.set(name, type);
    return name;
  }

  scalar(v: number): string {
    return this.constant('float32', [], [v]);
  }

  ints(values: readonly number[]): string {
    return this.constant('int64', [values.length], values);
  }

  /** A large constant tensor (not deduplicated), e.g. an averaging-count map. */
  tensor(hint: string, dims: Shape, data: Float32Array): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: 'float32', dims, data });
    this.shapes.set(name, dims);
    this.types.set(name, 'float32');
    return name;
  }

  // ---- opset-aware helpers ----

  private reduce(op: 'ReduceSum' | 'ReduceMean' | 'ReduceMax', x: string, axes: readonly number[], keepdims: boolean): string {
    const inShape = this.shape(x);
    const norm = axes.map((a) => (a < 0 ? a + inShape.length : a));
    const outShape = keepdims ? inShape.map((d, i) => (norm.includes(i) ? 1 : d)) : inShape.filter((_, i) => !norm.includes(i));
    const axesAsInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    const k = { keepdims: attr.int(keepdims ? 1 : 0) };
    if (axesAsInput) return this.op(op, [x, this.ints(norm)], outShape, k);
    return this.op(op, [x], outShape, { ...k, axes: attr.ints(norm) });
  }

  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.reduce('ReduceSum', x, axes, keepdims);
  }

  reduceMean(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.reduce('ReduceMean', x, axes, keepdims);
  }

  reshape(x: string, shape: Shape): string {
    const cur = this.shape(x);
    if (cur.length === shape.length && cur.every((d, i) => d === shape[i])) return x;
    return this.op('Reshape', [x, this.ints(shape)], shape);
  }

  transpose(x: string, perm: readonly number[]): string {
    const s = this.shape(x);
    return this.op('Transpose', [x], perm.map((p) => s[p]), { perm: attr.ints(perm) });
  }

  split(x: string, axis: number, sizes: readonly number[]): string[] {
    const s = this.shape(x);
    const shapes = sizes.map((n) => s.map((d, i) => (i === axis ? n : d)));
    if (this.opset >= 13) return this.opN('Split', [x, this.ints(sizes)], shapes, { axis: attr.int(axis) });
    return this.opN('Split', [x], shapes, { axis: attr.int(axis), split: attr.ints(sizes) });
  }

  unsqueeze(x: string, axes: readonly number[]): string {
    const s = [...this.shape(x)];
    for (const a of [...axes].sort((p, q) => p - q)) s.splice(a, 0, 1);
    return this.reshape(x, s);
  }

  /** x·(scalar or tensor) etc., shape of the broadcast result. */
  bin(op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow', a: string, b: string): string {
    return this.op(op, [a, b], broadcastShapes(this.shape(a), this.shape(b)));
  }

  un(op: string, x: string, attributes?: Record<string, AttrValue>): string {
    return this.op(op, [x], this.shape(x), attributes);
  }

  /** Zeros of a shape (allocated at run time, not stored in the model). */
  zeros(shape: Shape): string {
    return this.op('ConstantOfShape', [this.ints(shape)], shape, { value: attr.tensor({ name: 'v', dataType: 'float32', dims: [1], data: Float32Array.of(0) }) });
  }

  /** Sum of gradient contributions. */
  sum(parts: readonly string[]): string {
    if (parts.length === 1) return parts[0];
    if (parts.length === 2) return this.bin('Add', parts[0], parts[1]);
    return this.op('Sum', parts, this.shape(parts[0]));
  }

  /**
   * Sums a broadcast gradient back to the shape of the operand it came from (numpy
   * broadcasting: leading axes added, size-1 axes stretched).
   */
  unbroadcast(g: string, target: Shape): string {
    const gs = this.shape(g);
    const lead = gs.length - target.length;
    const axes: number[] = [];
    for (let i = 0; i < gs.length; i++) {
      if (i < lead) axes.push(i);
      else if (target[i - lead] === 1 && gs[i] !== 1) axes.push(i);
    }
    const r = axes.length ? this.reduceSum(g, axes, true) : g;
    return this.reshape(r, target);
  }
}

export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`autodiff: shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

export const size = (s: Shape): number => s.reduce((p, q) => p * q, 1);
