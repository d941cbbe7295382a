/**
 * Reverse-mode differentiation of ONNX graphs (issue 11.1): from a forward model (decoded
 * `ModelProto`), ONE training graph that onnxruntime runs as one session call per step:
 *
 *   forward (BatchNorm on batch statistics) → softmax cross-entropy on the logits
 *   → backward (rules.ts) → AdamW (torch's decoupled update) or SGD
 *
 * Parameters, optimiser moments and BatchNorm running statistics are graph inputs and the
 * updated values graph outputs (`<name>.next`), so the caller feeds each step's outputs to the
 * next step without copying (./trainer.ts does this). Shapes are static: the batch size is
 * fixed when the graph is built (training drops the last incomplete batch).
 *
 * Only what the loss depends on is differentiated, and only back to the trainable
 * parameters: the stem's input gradient is never computed. An operator on that path without
 * a rule fails with an NmlabError naming it (the first one in graph order).
 */
import { NmlabError } from '../../../shared/errors';
import { attr, encodeModel, valueInfo, type GraphSpec, type ModelSpec, type NodeSpec, type TensorSpec, type ValueInfoSpec } from '../builder';
import { decodeModel } from '../decode';
import { NO_GRADIENT, RULES, type NormSaved } from './rules';
import { attrFloat, attrInt, inferShapes, upstreamValues, type ConstValues } from './shapes';
import { GraphWriter, size, type Shape } from './writer';

export type NamePredicate = readonly string[] | ((name: string) => boolean);

export interface AdamWHyper {
  kind: 'adamw';
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Parameters that get weight decay; default: those with ≥ 2 dimensions (weights, not biases or norms). */
  decay?: NamePredicate;
}

export interface SgdHyper {
  kind: 'sgd';
  momentum?: number;
  nesterov?: boolean;
  /** L2 weight decay added to the gradient (torch.optim.SGD). */
  weightDecay?: number;
  decay?: NamePredicate;
}

export interface TrainingGraphOptions {
  /** Rows per step (fixed in the graph). */
  batchSize: number;
  /** The data input; default the first graph input that is not an initializer. */
  input?: string;
  /** Full shape of the data input where the model leaves non-batch dimensions symbolic. */
  inputShape?: readonly number[];
  /** The logits the loss is taken on; default the output named 'logits', else the last output. */
  logits?: string;
  /** Trainable initializers; default every float initializer that can carry a gradient. */
  trainable?: NamePredicate;
  /** Initializers kept fixed (applied after `trainable`). */
  frozen?: NamePredicate;
  /** BatchNorm on batch statistics with running-statistic updates ('train', default) or on the stored statistics ('frozen'). */
  batchNorm?: 'train' | 'frozen';
  /** Softmax cross-entropy on the logits, averaged over the batch (torch's F.cross_entropy). */
  loss?: { kind: 'softmax-ce'; labelSmoothing?: number };
  optimizer?: AdamWHyper | SgdHyper;
  /** Forward values to return as well (e.g. 'features'). */
  outputs?: readonly string[];
  /** Also return every parameter's gradient as `<name>.grad` (tests, debugging). */
  gradients?: boolean;
  /**
   * A scalar value of the model added to the cross-entropy and differentiated with it (e.g.
   * regularisers on features). The model's other non-initializer inputs, which such a term
   * may read, become inputs of the training graph with their declared static shapes (`aux`).
   */
  extraLoss?: string;
}

/** A state tensor carried from one step to the next. */
export interface StateSlot {
  name: string;
  shape: number[];
  input: string;
  output: string;
}

export interface ParamSlot extends StateSlot {
  /** Optimiser state of this parameter (AdamW: m, v; SGD: momentum buffer). */
  state: StateSlot[];
  decayed: boolean;
}

export interface TrainingGraph {
  model: ModelSpec;
  bytes: Uint8Array;
  batchSize: number;
  /** Data input name and its shape, and the int64 [batch] labels input. */
  input: string;
  inputShape: number[];
  labels: string;
  /** Scalar float inputs fed each step: lr, and for AdamW the bias-correction terms. */
  scalars: { lr: string; stepSize?: string; rsbc2?: string };
  params: ParamSlot[];
  /** BatchNorm running statistics (training mode). */
  buffers: StateSlot[];
  outputs: { loss: string; correct: string; extra: Record<string, string>; grads: Record<string, string> };
  /** Inputs fed each step besides the data and labels (with `extraLoss`): name and shape. */
  aux: { name: string; shape: number[] }[];
  /** Initial values of params, optimiser state (zeros) and buffers, by state input name. */
  initial: Record<string, Float32Array>;
  optimizer: Required<Omit<AdamWHyper, 'decay'>> | Required<Omit<SgdHyper, 'decay'>>;
  /** Static shape of every value of the graph (for rewrites such as ./nchwc.ts). */
  shapes: ReadonlyMap<string, Shape>;
}

function matcher(p: NamePredicate | undefined, dflt: (name: string) => boolean): (name: string) => boolean {
  if (!p) return dflt;
  if (typeof p === 'function') return p;
  const set = new Set(p);
  return (n) => set.has(n);
}

/** Rewrites nodes of opset < 13 whose axes/splits/bounds were attributes into input form. */
function upgradeNode(node: NodeSpec, modelOpset: number, w: GraphWriter): NodeSpec {
  // BatchNormalization of opsets < 14 lists training outputs (running and saved statistics)
  // that inference exports never read; opset 14+ forbids them outside training mode.
  const n = node.opType === 'BatchNormalization' && modelOpset < 14 ? { ...node, outputs: node.outputs.slice(0, 1) } : node;
  if (modelOpset >= 13) return n;
  const a = { ...(n.attributes ?? {}) };
  const take = (k: string): number[] | undefined => {
    const v = a[k];
    delete a[k];
    return v && v.type === 'ints' ? v.value.map(Number) : undefined;
  };
  switch (n.opType) {
    case 'Squeeze':
    case 'Unsqueeze':
    case 'ReduceSum': {
      const axes = take('axes');
      return { ...n, attributes: a, inputs: axes ? [n.inputs[0], w.ints(axes)] : n.inputs };
    }
    case 'Split': {
      const s = take('split');
      return { ...n, attributes: a, inputs: s ? [n.inputs[0], w.ints(s)] : n.inputs };
    }
    case 'Clip': {
      if (modelOpset >= 11) return n;
      const lo = a.min?.type === 'float' ? a.min.value : -3.4e38;
      const hi = a.max?.type === 'float' ? a.max.value : 3.4e38;
      delete a.min;
      delete a.max;
      return { ...n, attributes: a, inputs: [n.inputs[0], w.scalar(lo), w.scalar(hi)] };
    }
    case 'Pad': {
      if (modelOpset >= 11) return n;
      const pads = take('pads') ?? [];
      const value = a.value?.type === 'float' ? a.value.value : 0;
      delete a.value;
      return { ...n, attributes: a, inputs: [n.inputs[0], w.ints(pads), w.scalar(value)] };
    }
    case 'Dropout':
      return { ...n, attributes: {}, inputs: [n.inputs[0]] };
    case 'BatchNormalization': {
      delete a.spatial;
      delete a.is_test;
      delete a.consumed_inputs;
      return { ...n, attributes: a };
    }
    default:
      return n;
  }
}

/**
 * torch's AdamW (decoupled decay) on every parameter flattened into one vector: writes the new
 * moments to `mNext`/`vNext` and returns the new parameters,
 *   p ← p·(1 − lr·λ·d) − step·m̂/(√v̂ + ε)
 * with d the 0/1 `decay` mask (which parameters decay), or no decay at all without one.
 */
function adamw(
  w: GraphWriter,
  h: Required<Omit<AdamWHyper, 'decay'>>,
  scalars: TrainingGraph['scalars'],
  lr: string,
  t: { p: string; g: string; m: string; v: string; mNext: string; vNext: string; decay?: string },
): string {
  const shape = w.shape(t.p);
  w.op('Add', [w.bin('Mul', t.m, w.scalar(h.beta1)), w.bin('Mul', t.g, w.scalar(1 - h.beta1))], shape, undefined, { out: t.mNext });
  w.op('Add', [w.bin('Mul', t.v, w.scalar(h.beta2)), w.bin('Mul', w.bin('Mul', t.g, t.g), w.scalar(1 - h.beta2))], shape, undefined, { out: t.vNext });
  const denom = w.bin('Add', w.bin('Mul', w.un('Sqrt', t.vNext), scalars.rsbc2 as string), w.scalar(h.eps));
  const upd = w.bin('Mul', w.bin('Div', t.mNext, denom), scalars.stepSize as string);
  if (t.decay === undefined) return w.bin('Sub', t.p, upd);
  const rate = w.bin('Mul', lr, w.scalar(h.weightDecay));
  const base = w.bin('Mul', t.p, w.bin('Sub', w.scalar(1), w.bin('Mul', rate, t.decay)));
  return w.bin('Sub', base, upd);
}

/** Build the training graph of `model` (ONNX bytes or a decoded model). */
export function buildTrainingGraph(model: Uint8Array | ModelSpec, opts: TrainingGraphOptions): TrainingGraph {
  const spec = model instanceof Uint8Array ? decodeModel(model) : model;
  const g = spec.graph;
  const modelOpset = spec.opsetVersion ?? 17;
  const opset = Math.max(modelOpset, 17);
  const w = new GraphWriter(opset);
  const consts: ConstValues = new Map();
  const inits = new Map((g.initializers ?? []).map((t) => [t.name, t]));
  const dataInputs = g.inputs.filter((v) => !inits.has(v.name));
  const input = opts.input ?? dataInputs[0]?.name;
  const inputInfo = dataInputs.find((v) => v.name === input);
  if (!input || !inputInfo) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}": data input "${input ?? ''}" not found (inputs: ${dataInputs.map((v) => v.name).join(', ')})`);
  const bs = opts.batchSize;
  if (!Number.isInteger(bs) || bs < 1) throw new NmlabError('BAD_REQUEST', `training batch size must be a positive integer (got ${bs})`);
  const inputShape = opts.inputShape ? [...opts.inputShape] : inputInfo.shape.map((d, i) => (i === 0 ? bs : typeof d === 'number' ? d : NaN));
  inputShape[0] = bs;
  const logits = opts.logits ?? (g.outputs.find((o) => o.name === 'logits') ?? g.outputs[g.outputs.length - 1])?.name;
  if (!logits) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}" has no output to train on`);
  const bnMode = opts.batchNorm ?? 'train';

  const aux = opts.extraLoss ? dataInputs.filter((v) => v.name !== input).map((v) => ({ name: v.name, shape: v.shape.map(Number) })) : [];
  for (const a of aux) if (a.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}": input "${a.name}" of the extra loss needs a static shape`);

  const nodes = g.nodes.map((n) => upgradeNode(n, modelOpset, w));
  inferShapes({ ...g, nodes }, { [input]: inputShape, ...Object.fromEntries(aux.map((a) => [a.name, a.shape])) }, w, consts);
  if (!w.shapes.has(logits)) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}": logits value "${logits}" is not produced by the graph`);
  const ls = w.shape(logits);
  if (ls.length !== 2 || ls[0] !== bs) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}": logits "${logits}" have shape [${ls.join(', ')}], expected [batch, classes]`);
  const numClasses = ls[1];

  // Trainable parameters: float initializers in a gradient-carrying slot (BN statistics are not).
  const candidate = new Set<string>();
  for (const n of nodes) {
    const r = RULES[n.opType];
    if (!r) continue;
    n.inputs.forEach((inp, i) => {
      const t = inits.get(inp);
      if (t && t.dataType === 'float32' && r.slots.includes(i) && t.data.length > 0) candidate.add(inp);
    });
  }
  const isTrainable = matcher(opts.trainable, (name) => candidate.has(name));
  const isFrozen = matcher(opts.frozen, () => false);
  const trainable = [...inits.keys()].filter((name) => candidate.has(name) && isTrainable(name) && !isFrozen(name));
  if (opts.trainable && typeof opts.trainable !== 'function') {
    for (const name of opts.trainable) if (!candidate.has(name)) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}": "${name}" is not a float initializer the loss depends on, so it cannot be trained`);
  }

  // Values that depend on a trainable parameter.
  const requires = new Set<string>(trainable);
  // Values the loss depends on (for the "cannot differentiate" check).
  const reaches = upstreamValues(nodes, opts.extraLoss ? [logits, opts.extraLoss] : [logits]);
  for (const n of nodes) {
    const r = RULES[n.opType];
    const live = n.inputs.some((inp, i) => requires.has(inp) && (!r || r.slots.includes(i)));
    if (!live) continue;
    if (NO_GRADIENT.has(n.opType)) continue;
    if (n.opType === 'Cast' && !['float32', 'float64', 'float16'].includes(w.types.get(n.outputs[0]) ?? '')) continue;
    if (!r) {
      if (n.outputs.some((o) => reaches.has(o))) throw new NmlabError('UNSUPPORTED', `ONNX model "${g.name}": NMLab cannot differentiate operator ${n.opType} (node "${n.name ?? n.outputs[0]}"), the first unsupported operator between the trainable parameters and the loss`);
      continue;
    }
    for (const o of n.outputs) if (o) requires.add(o);
  }

  // ---- forward ----
  const saved = new Map<string, NormSaved>();
  const buffers: StateSlot[] = [];
  const bufferOutputs: NodeSpec[] = [];
  for (const n of nodes) {
    if (n.opType === 'BatchNormalization' && bnMode === 'train' && requires.has(n.outputs[0])) {
      const [x, gamma, beta, rm, rv] = n.inputs;
      const xs = w.shape(x);
      const axes = xs.map((_, i) => i).filter((i) => i !== 1);
      const count = size(xs) / xs[1];
      const eps = attrFloat(n, 'epsilon', 1e-5);
      const momentum = attrFloat(n, 'momentum', 0.9);
      const mean = w.reduceMean(x, axes, true);
      const xc = w.bin('Sub', x, mean);
      const variance = w.reduceMean(w.bin('Mul', xc, xc), axes, true);
      const rstd = w.un('Reciprocal', w.un('Sqrt', w.bin('Add', variance, w.scalar(eps))));
      const c = [xs[1]];
      w.nodes.push({ opType: 'BatchNormalization', name: n.name, inputs: [x, gamma, beta, w.reshape(mean, c), w.reshape(variance, c)], outputs: [n.outputs[0]], attributes: { epsilon: attr.float(eps) } });
      saved.set(n.outputs[0], { xc, rstd, axes, count });
      // running ← momentum·running + (1 − momentum)·batch (unbiased variance), ONNX's momentum convention
      for (const [stat, batch, unbias] of [[rm, mean, 1], [rv, variance, count / Math.max(1, count - 1)]] as const) {
        if (!inits.has(stat)) continue;
        const upd = w.bin('Add', w.bin('Mul', stat, w.scalar(momentum)), w.reshape(w.bin('Mul', batch, w.scalar((1 - momentum) * unbias)), c));
        bufferOutputs.push({ opType: 'Identity', inputs: [upd], outputs: [`${stat}.next`] });
        buffers.push({ name: stat, shape: [...c], input: stat, output: `${stat}.next` });
      }
      continue;
    }
    if (n.opType === 'LayerNormalization' && requires.has(n.outputs[0])) {
      const xs = w.shape(n.inputs[0]);
      const ax = attrInt(n, 'axis', -1) < 0 ? attrInt(n, 'axis', -1) + xs.length : attrInt(n, 'axis', -1);
      const axes = xs.map((_, i) => i).filter((i) => i >= ax);
      const stat = xs.map((d, i) => (i < ax ? d : 1));
      const mean = n.outputs[1] || w.fresh('ln_mean');
      const rstd = n.outputs[2] || w.fresh('ln_rstd');
      w.shapes.set(mean, stat);
      w.shapes.set(rstd, stat);
      w.nodes.push({ ...n, outputs: [n.outputs[0], mean, rstd] });
      saved.set(n.outputs[0], { xc: w.bin('Sub', n.inputs[0], mean), rstd, axes, count: size(axes.map((a) => xs[a])) });
      continue;
    }
    if (n.opType === 'MaxPool' && requires.has(n.outputs[0]) && !n.outputs[1]) {
      const idx = w.fresh('maxpool_idx');
      w.shapes.set(idx, w.shape(n.outputs[0]));
      w.types.set(idx, 'int64');
      const upgraded = { ...n, outputs: [n.outputs[0], idx] };
      w.nodes.push(upgraded);
      nodes[nodes.indexOf(n)] = upgraded;
      continue;
    }
    w.nodes.push(n);
  }

  // ---- loss: mean softmax cross-entropy with optional label smoothing ----
  const labels = 'labels';
  const eps = opts.loss?.labelSmoothing ?? 0;
  const target = w.op('OneHot', [labels, w.constant('int64', [], [numClasses]), w.constant('float32', [2], [eps / numClasses, 1 - eps + eps / numClasses])], ls, { axis: attr.int(-1) });
  const logp = w.op('LogSoftmax', [logits], ls, { axis: attr.int(1) });
  const lossName = 'loss';
  const nll = w.reduceSum(w.bin('Mul', target, logp), [0, 1], false);
  if (opts.extraLoss) {
    if (!w.shapes.has(opts.extraLoss) || size(w.shape(opts.extraLoss)) !== 1) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}": extra loss "${opts.extraLoss}" is not a scalar value of the graph`);
    w.op('Add', [w.bin('Mul', nll, w.scalar(-1 / bs)), opts.extraLoss], [], undefined, { out: lossName });
  } else w.op('Mul', [nll, w.scalar(-1 / bs)], [], undefined, { out: lossName });
  const pred = w.op('ArgMax', [logits], [bs], { axis: attr.int(1), keepdims: attr.int(0) }, { type: 'int64' });
  const hits = w.op('Cast', [w.op('Equal', [pred, labels], [bs], undefined, { type: 'bool' })], [bs], { to: attr.int(1) });
  const correct = w.reduceSum(hits, [0], false);
  const dlogits = w.bin('Mul', w.bin('Sub', w.un('Exp', logp), target), w.scalar(1 / bs));

  // ---- backward ----
  const grads = new Map<string, string[]>([[logits, [dlogits]]]);
  if (opts.extraLoss) grads.set(opts.extraLoss, [w.constant('float32', w.shape(opts.extraLoss), [1])]);
  const push = (v: string, gname: string): void => {
    const list = grads.get(v);
    if (list) list.push(gname);
    else grads.set(v, [gname]);
  };
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => grads.has(o))) continue;
    const r = RULES[n.opType];
    if (!r) continue;
    const need = n.inputs.map((inp, k) => !!inp && requires.has(inp) && r.slots.includes(k));
    if (!need.some(Boolean)) continue;
    const dy = n.outputs.map((o) => {
      const list = grads.get(o);
      return list && list.length ? w.sum(list) : null;
    });
    if (dy[0] === null && n.opType !== 'Split') continue;
    const ins = r.rule({ w, n, dy, need, consts, saved, modelOpset });
    ins.forEach((gname, k) => {
      if (gname && need[k]) push(n.inputs[k], gname);
    });
  }

  // ---- optimiser ----
  const lr = 'lr';
  const opt = opts.optimizer ?? { kind: 'adamw' };
  const decayed = matcher(opt.decay, (name) => (inits.get(name)?.dims.length ?? 0) >= 2);
  const scalars: TrainingGraph['scalars'] = { lr };
  w.shapes.set(lr, []);
  const params: ParamSlot[] = [];
  const initial: Record<string, Float32Array> = {};
  const extraInputs: ValueInfoSpec[] = [];
  const outputs: ValueInfoSpec[] = [valueInfo(lossName, 'float32', []), valueInfo(correct, 'float32', [])];
  const gradOutputs: Record<string, string> = {};
  let optimizer: TrainingGraph['optimizer'];
  if (opt.kind === 'adamw') {
    const h = { kind: 'adamw' as const, beta1: opt.beta1 ?? 0.9, beta2: opt.beta2 ?? 0.999, eps: opt.eps ?? 1e-8, weightDecay: opt.weightDecay ?? 1e-2 };
    optimizer = h;
    scalars.stepSize = 'adam.step_size';
    scalars.rsbc2 = 'adam.rsbc2';
    w.shapes.set(scalars.stepSize, []);
    w.shapes.set(scalars.rsbc2, []);
  } else {
    optimizer = { kind: 'sgd', momentum: opt.momentum ?? 0.9, nesterov: opt.nesterov ?? true, weightDecay: opt.weightDecay ?? 0 };
  }
  const flatParts: { name: string; g: string; shape: number[]; dec: boolean; m: StateSlot; v: StateSlot }[] = [];
  for (const name of trainable) {
    const t = inits.get(name) as TensorSpec;
    const shape = [...t.dims];
    const parts = grads.get(name);
    const gname = parts && parts.length ? w.sum(parts) : w.zeros(shape);
    if (opts.gradients) {
      w.nodes.push({ opType: 'Identity', inputs: [gname], outputs: [`${name}.grad`] });
      gradOutputs[name] = `${name}.grad`;
      outputs.push(valueInfo(`${name}.grad`, 'float32', shape));
    }
    const dec = decayed(name);
    const state: StateSlot[] = [];
    if (optimizer.kind === 'adamw') {
      const m = { name: `${name}.adam_m`, shape, input: `${name}.adam_m`, output: `${name}.adam_m.next` };
      const v = { name: `${name}.adam_v`, shape, input: `${name}.adam_v`, output: `${name}.adam_v.next` };
      state.push(m, v);
      w.shapes.set(m.input, shape);
      w.shapes.set(v.input, shape);
      flatParts.push({ name, g: gname, shape, dec, m, v });
    } else {
      const { momentum, nesterov, weightDecay } = optimizer;
      const b = { name: `${name}.momentum`, shape, input: `${name}.momentum`, output: `${name}.momentum.next` };
      state.push(b);
      w.shapes.set(b.input, shape);
      const gd = dec && weightDecay > 0 ? w.bin('Add', gname, w.bin('Mul', name, w.scalar(weightDecay))) : gname;
      w.op('Add', [w.bin('Mul', b.input, w.scalar(momentum)), gd], shape, undefined, { out: b.output });
      const dir = nesterov ? w.bin('Add', gd, w.bin('Mul', b.output, w.scalar(momentum))) : b.output;
      w.nodes.push({ opType: 'Identity', inputs: [w.bin('Sub', name, w.bin('Mul', dir, lr))], outputs: [`${name}.next`] });
    }
    params.push({ name, shape, input: name, output: `${name}.next`, state, decayed: dec });
    initial[name] = Float32Array.from(t.data as Float32Array);
    for (const s of state) {
      initial[s.input] = new Float32Array(size(shape));
      extraInputs.push(valueInfo(s.input, 'float32', shape));
      outputs.push(valueInfo(s.output, 'float32', shape));
    }
    outputs.push(valueInfo(`${name}.next`, 'float32', shape));
  }
  if (optimizer.kind === 'adamw' && flatParts.length) {
    // One AdamW over every parameter concatenated: a dozen elementwise nodes in all instead of
    // a dozen per parameter (onnxruntime's per-node cost dominates these small tensors).
    const sizes = flatParts.map((f) => size(f.shape));
    const total = sizes.reduce((a, b) => a + b, 0);
    const cat = (names: string[]): string => (names.length === 1 ? names[0] : w.op('Concat', names, [total], { axis: attr.int(0) }));
    const flatOf = (pick: (f: (typeof flatParts)[number]) => string): string => cat(flatParts.map((f) => w.reshape(pick(f), [size(f.shape)])));
    const mask = new Float32Array(total);
    let at = 0;
    flatParts.forEach((f, i) => {
      if (f.dec) mask.fill(1, at, at + sizes[i]);
      at += sizes[i];
    });
    const anyDecay = optimizer.weightDecay > 0 && flatParts.some((f) => f.dec);
    const [mNext, vNext] = [w.fresh('adam_m_flat'), w.fresh('adam_v_flat')];
    const upd = adamw(w, optimizer, scalars, lr, { p: flatOf((f) => f.name), g: flatOf((f) => f.g), m: flatOf((f) => f.m.input), v: flatOf((f) => f.v.input), mNext, vNext, decay: anyDecay ? w.tensor('decay_mask', [total], mask) : undefined });
    const unflat = (x: string, names: string[]): void => {
      const pieces = flatParts.length === 1 ? [x] : w.split(x, 0, sizes);
      pieces.forEach((piece, i) => w.op('Reshape', [piece, w.ints(flatParts[i].shape)], flatParts[i].shape, undefined, { out: names[i] }));
    };
    unflat(mNext, flatParts.map((f) => f.m.output));
    unflat(vNext, flatParts.map((f) => f.v.output));
    unflat(upd, flatParts.map((f) => `${f.name}.next`));
  }
  for (const b of buffers) {
    initial[b.input] = Float32Array.from((inits.get(b.name) as TensorSpec).data as Float32Array);
    outputs.push(valueInfo(b.output, 'float32', b.shape));
  }
  w.nodes.push(...bufferOutputs);
  const extra: Record<string, string> = {};
  for (const o of opts.outputs ?? []) {
    if (!w.shapes.has(o)) throw new NmlabError('BAD_REQUEST', `ONNX model "${g.name}": requested output "${o}" is not a value of the graph`);
    extra[o] = o;
    outputs.push(valueInfo(o, w.types.get(o) ?? 'float32', w.shape(o)));
  }

  const stateNames = new Set([...trainable, ...buffers.map((b) => b.name)]);
  const graph: GraphSpec = {
    name: `${g.name}_training`,
    nodes: w.nodes,
    inputs: [
      valueInfo(input, inputInfo.elemType, inputShape),
      valueInfo(labels, 'int64', [bs]),
      valueInfo(lr, 'float32', []),
      ...aux.map((a) => valueInfo(a.name, 'float32', a.shape)),
      ...(scalars.stepSize ? [valueInfo(scalars.stepSize, 'float32', []), valueInfo(scalars.rsbc2 as string, 'float32', [])] : []),
      ...trainable.map((n) => valueInfo(n, 'float32', (inits.get(n) as TensorSpec).dims)),
      ...extraInputs,
      ...buffers.map((b) => valueInfo(b.input, 'float32', b.shape)),
    ],
    outputs,
    initializers: [...(g.initializers ?? []).filter((t) => !stateNames.has(t.name)), ...w.initializers],
  };
  const out: ModelSpec = { graph, opsetVersion: opset, irVersion: Math.max(spec.irVersion ?? 8, 8), producerName: 'nmlab-autodiff', extraOpsets: spec.extraOpsets };
  return {
    model: out,
    bytes: encodeModel(out),
    batchSize: bs,
    input,
    inputShape,
    labels,
    scalars,
    params,
    buffers,
    outputs: { loss: lossName, correct, extra, grads: gradOutputs },
    aux,
    initial,
    optimizer,
    shapes: w.shapes,
  };
}

export { decodeModel };
