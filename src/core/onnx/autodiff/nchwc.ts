/**
 * The training graph's convolutions on ORT's blocked-layout (NCHWc) CPU kernels.
 *
 * ORT's fast CPU convolution (MLAS NCHWc) is reached only through its graph optimiser, which
 * needs constant weights: a training graph's weights are inputs, so its `Conv` nodes take the
 * generic im2col + GEMM path, and the input gradients' `ConvTranspose` a per-image GEMM and
 * col2im. Neither uses a second core well. The `com.microsoft.nchwc` operators themselves
 * take the weights as an input, already blocked; so each 2-D ungrouped convolution becomes
 *
 *   ReorderInput(x) → nchwc.Conv(x, blocked W) → ReorderOutput
 *
 * with W blocked in the graph every step (a few thousand floats; zero-padded to whole blocks
 * of channels where the counts are not multiples of the block), and each stride-1 input
 * gradient `ConvTranspose(dY, W)` becomes the same sandwich around a correlation of dY with W
 * transposed and flipped (a strided one, one correlation per output phase, interleaved after:
 * {@link polyphaseInputGrad}). A value several convolutions read is reordered once, and the
 * weight gradients' NHWC copies of a blocked value come from the blocked tensor (a Reshape
 * when it is one block of channels, a ReorderOutput to channels-last otherwise) instead of a
 * Transpose: the CNN's step, ORT profile at 2 threads, 9.7 → 4.3 ms of Transpose for 1.5 ms
 * more of ReorderOutput. Everything else stays NCHW (the weight gradients too: as one
 * NCHWc convolution of the batch they measured no faster than their GEMMs), so the
 * rewrite is local and exact up to float summation order. Measured (bench/RESULTS.md,
 * 2 December): one 3×3 convolution of batch 128 at 16×16×14×14 / 32×32×7×7 / 64×64×4×4 takes
 * 1.4–3.4× less time this way on one thread, 2.2–2.7× on two, reorders included.
 *
 * CPU execution provider only (the operators exist nowhere else); the block size (8 with
 * AVX2, 16 with AVX-512) is the CPU's, read from ORT by {@link nchwcBlockSize}.
 */
import type { InferenceSession } from 'onnxruntime-node';
import { attr, encodeModel, valueInfo, type GraphSpec, type ModelSpec, type NodeSpec, type TensorSpec } from '../builder';
import type { TrainingGraph } from './index';
import { attrInt, attrInts, attrString, upstreamValues } from './shapes';

type Ort = typeof import('onnxruntime-node');

const NCHWC = 'com.microsoft.nchwc';

let cachedBlock: Promise<number | null> | undefined;

/**
 * MLAS's NCHWc channel block on this CPU, from ORT itself (ReorderInput pads 4 channels to one
 * block), and proved: a blocked-input and an NCHW-input convolution laid out for that block must
 * match ORT's plain Conv, or the rewrite is not used (a 4 read off a CPU whose block is below 4
 * would otherwise lay out filters wrongly). Null where the operators are missing or disagree.
 */
export function nchwcBlockSize(ort: Ort): Promise<number | null> {
  cachedBlock ??= (async () => {
    try {
      const s = await probeSession(ort, { name: 'nchwc_block', inputs: [valueInfo('x', 'float32', [1, 4, 1, 1])], outputs: [valueInfo('y', 'float32', [1, null, 1, 1])], nodes: [{ opType: 'ReorderInput', domain: NCHWC, inputs: ['x'], outputs: ['y'] }] });
      let b: number;
      try {
        b = (await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) })).y.dims[1];
      } finally {
        await s.release();
      }
      if (!(b >= 4 && (b & (b - 1)) === 0)) return null;
      return (await nchwcBlockProved(ort, b)) ? b : null;
    } catch {
      return null;
    }
  })();
  return cachedBlock;
}

/** A CPU session of a small graph on the NCHWc operators (the block probes here). */
function probeSession(ort: Ort, graph: GraphSpec): Promise<InferenceSession> {
  return ort.InferenceSession.create(encodeModel({ opsetVersion: 13, extraOpsets: [{ domain: NCHWC, version: 1 }], graph }), { executionProviders: ['cpu'], logSeverityLevel: 3 });
}

/** Whether convolutions rewritten for block `b` compute what ORT's Conv computes (both filter layouts). */
export async function nchwcBlockProved(ort: Ort, b: number): Promise<boolean> {
  const nodes: NodeSpec[] = [];
  const e = new Emitter(nodes);
  const conv = { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([1, 1]) };
  const cases = [
    { x: 'xb', w: 'wb', c: 2 * b },
    { x: 'x1', w: 'w1', c: 1 },
  ];
  for (const k of cases) {
    nodes.push({ opType: 'Conv', inputs: [k.x, k.w], outputs: [`${k.x}_plain`], attributes: conv });
    e.sandwich(k.x, k.c, e.nchwcFilter(k.w, [2 * b, k.c, 3, 3], b).w, undefined, 2 * b, conv, b, `${k.x}_nchwc`);
  }
  const s = await probeSession(ort, {
    name: 'nchwc_proof',
    nodes,
    initializers: e.initializers,
    inputs: cases.flatMap((k) => [valueInfo(k.x, 'float32', [2, k.c, 5, 5]), valueInfo(k.w, 'float32', [2 * b, k.c, 3, 3])]),
    outputs: cases.flatMap((k) => [valueInfo(`${k.x}_plain`, 'float32', [2, 2 * b, 5, 5]), valueInfo(`${k.x}_nchwc`, 'float32', [2, 2 * b, 5, 5])]),
  });
  try {
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = {};
    for (const k of cases) {
      feeds[k.x] = new ort.Tensor('float32', Float32Array.from({ length: 2 * k.c * 25 }, (_, i) => Math.sin(1.7 * i + k.c)), [2, k.c, 5, 5]);
      feeds[k.w] = new ort.Tensor('float32', Float32Array.from({ length: 2 * b * k.c * 9 }, (_, i) => Math.cos(0.9 * i + k.c)), [2 * b, k.c, 3, 3]);
    }
    const r = await s.run(feeds);
    return cases.every((k) => {
      const p = r[`${k.x}_plain`].data as Float32Array;
      const q = r[`${k.x}_nchwc`].data as Float32Array;
      let scale = 0;
      let err = 0;
      for (let i = 0; i < p.length; i++) {
        scale = Math.max(scale, Math.abs(p[i]));
        err = Math.max(err, Math.abs(p[i] - q[i]));
      }
      return err <= 1e-4 * scale;
    });
  } finally {
    await s.release();
  }
}

/** Appends the replacement nodes to `nodes`; fresh names under `nchwc/`. */
class Emitter {
  readonly initializers: TensorSpec[] = [];
  private k = 0;
  private readonly shapeConsts = new Map<string, string>();

  /** Values already reordered into the blocked layout, by NCHW name (one ReorderInput each). */
  readonly blocked = new Map<string, string>();

  constructor(private readonly nodes: NodeSpec[]) {}

  blockedInput(x: string): string {
    let xb = this.blocked.get(x);
    if (!xb) {
      xb = this.node('ReorderInput', [x], undefined, NCHWC);
      this.blocked.set(x, xb);
    }
    return xb;
  }

  fresh(hint: string): string {
    return `nchwc/${hint}_${this.k++}`;
  }

  node(opType: string, inputs: string[], attributes?: NodeSpec['attributes'], domain?: string, out = this.fresh(opType.toLowerCase()), name?: string): string {
    this.nodes.push({ opType, inputs, outputs: [out], ...(attributes ? { attributes } : {}), ...(domain ? { domain } : {}), ...(name ? { name } : {}) });
    return out;
  }

  floats(hint: string, dims: readonly number[], data: Float32Array): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: 'float32', dims, data });
    return name;
  }

  int64s(values: readonly number[]): string {
    const key = values.join(',');
    let name = this.shapeConsts.get(key);
    if (!name) {
      name = this.fresh('i64');
      this.initializers.push({ name, dataType: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
      this.shapeConsts.set(key, name);
    }
    return name;
  }

  reshape(x: string, shape: readonly number[]): string {
    return this.node('Reshape', [x, this.int64s(shape)]);
  }

  /**
   * W [O, I, kh, kw] in MLAS's filter layout for nchwc.Conv: [O/B][I/B][kh][kw][Bi][Bo] when the
   * input is blocked (I a multiple of B), [O/B][I][kh][kw][Bo] when it is plain NCHW (I < B).
   */
  blockFilter(w: string, [o, i, kh, kw]: readonly number[], b: number): string {
    if (i < b) {
      const t = this.node('Transpose', [this.reshape(w, [o / b, b, i, kh, kw])], { perm: attr.ints([0, 2, 3, 4, 1]) });
      return this.reshape(t, [o, i, kh, kw]);
    }
    const t = this.node('Transpose', [this.reshape(w, [o / b, b, i / b, b, kh, kw])], { perm: attr.ints([0, 2, 4, 5, 3, 1]) });
    return this.reshape(t, [o, i, kh, kw]);
  }

  /**
   * W [O, I, kh, kw] (and its bias) as nchwc.Conv takes them for block `b`: zero filters and
   * zero input channels appended up to {@link blockedChannels} (the blocked layout needs whole
   * blocks of filters, and ReorderInput pads the input's channels with zeros to whole blocks,
   * which the zero weights then meet; ReorderOutput keeps only the true output channels), then
   * laid out by {@link blockFilter}.
   */
  nchwcFilter(w: string, [o, i, kh, kw]: readonly number[], b: number, bias?: string): { w: string; bias?: string } {
    const to = blockedChannels(o, i, b);
    const padded = to.o === o && to.i === i ? w : this.node('Pad', [w, this.int64s([0, 0, 0, 0, to.o - o, to.i - i, 0, 0])]);
    const pb = bias && to.o !== o ? this.node('Pad', [bias, this.int64s([0, to.o - o])]) : bias;
    return { w: this.blockFilter(padded, [to.o, to.i, kh, kw], b), bias: pb };
  }

  /**
   * ReorderInput (unless the input stays NCHW), nchwc.Conv, ReorderOutput into `out`; the
   * convolution keeps the replaced node's name (profiles, ORT's messages).
   */
  /** x as an nchwc.Conv reads it: NCHW when fewer channels than a block, else blocked. */
  convInput(x: string, channels: number, b: number): string {
    return channels < b ? x : this.blockedInput(x);
  }

  sandwich(x: string, inChannels: number, blockedW: string, bias: string | undefined, outChannels: number, convAttrs: NonNullable<NodeSpec['attributes']>, b: number, out: string, name?: string): void {
    const xb = this.convInput(x, inChannels, b);
    const y = this.node('Conv', bias ? [xb, blockedW, bias] : [xb, blockedW], convAttrs, NCHWC, undefined, name);
    this.node('ReorderOutput', [y], { channels: attr.int(outChannels) }, NCHWC, out);
    // y is `out` blocked: its extra channels are zero filters' (and zero biases') outputs.
    this.blocked.set(out, y);
  }
}

/**
 * The filter shape a convolution of `outC` filters over `inC` channels takes on the NCHWc
 * kernels: filters rounded up to whole blocks; input channels too, unless fewer than a block
 * (then the input stays NCHW, MLAS's case for a stem).
 */
function blockedChannels(outC: number, inC: number, b: number): { o: number; i: number } {
  const up = (c: number): number => Math.ceil(c / b) * b;
  return { o: up(outC), i: inC < b ? inC : up(inC) };
}

/** Whether a convolution node is 2-D and ungrouped, with explicit pads (what the rewrite handles). */
function plain2d(n: NodeSpec, wShape: readonly number[] | undefined): wShape is readonly number[] {
  return (
    wShape !== undefined &&
    wShape.length === 4 &&
    attrInt(n, 'group', 1) === 1 &&
    attrString(n, 'auto_pad', 'NOTSET') === 'NOTSET'
  );
}

/**
 * Whether a node is a ConvTranspose the rewrite takes: 2-D, ungrouped, undilated, without bias
 * (an input gradient) or an `output_shape` attribute (which would imply pads other than the
 * attribute's).
 */
function plainTranspose(n: NodeSpec, wShape: readonly number[] | undefined): wShape is readonly number[] {
  return n.opType === 'ConvTranspose' && (n.domain ?? '') === '' && plain2d(n, wShape) && !n.inputs[2] && !n.attributes?.output_shape && (attrInts(n, 'dilations') ?? [1, 1]).every((d) => d === 1);
}

/**
 * The training graph with its convolutions and input gradients on NCHWc kernels (see the module
 * comment), or null when no node qualifies (every 2-D ungrouped Conv does, and every stride-1
 * input gradient). Channel counts that are not whole blocks get zero filters and zero input
 * channels up to whole blocks ({@link Emitter.nchwcFilter}); fewer input channels than a block
 * keep the input NCHW.
 */
export function nchwcTrainingModel(g: TrainingGraph, block: number): ModelSpec | null {
  return nchwcModel(g.model, g.shapes, block);
}

/** {@link nchwcTrainingModel} of any model whose value shapes are known. */
export function nchwcModel(model: ModelSpec, shapes: ReadonlyMap<string, readonly number[]>, block: number): ModelSpec | null {
  const shape = (v: string): readonly number[] | undefined => shapes.get(v);
  const nodes: NodeSpec[] = [];
  const e = new Emitter(nodes);
  let rewritten = 0;
  const stridedPhases = (n: NodeSpec): Phases | null => {
    const ws = shape(n.inputs[1] ?? '');
    const [dy, dx] = [shape(n.inputs[0]), shape(n.outputs[0])];
    const strided = (attrInts(n, 'strides') ?? [1, 1]).some((v) => v !== 1);
    return plainTranspose(n, ws) && dy && dx && strided ? phasesOf(n, ws, dy, dx) : null;
  };
  const pairs = phasePairs(model.graph.nodes, model.graph.outputs.map((o) => o.name), stridedPhases);
  const fused = new Set([...pairs.values()].flatMap(([p, q]) => [p.n, q.n]));
  for (const n of model.graph.nodes) {
    const domain = n.domain ?? '';
    if (domain !== '' && domain !== 'ai.onnx') {
      nodes.push(n);
      continue;
    }
    if (fused.has(n)) continue; // emitted at their Add
    const pair = pairs.get(n);
    if (pair) {
      polyphaseInputGrad(e, pair[0], block, n.outputs[0], pair[1]);
      rewritten++;
      continue;
    }
    const ws = shape(n.inputs[1] ?? '');
    if (n.opType === 'Conv' && plain2d(n, ws)) {
      const [co, ci, kh, kw] = ws;
      const f = e.nchwcFilter(n.inputs[1], ws, block, n.inputs[2] || undefined);
      e.sandwich(n.inputs[0], ci, f.w, f.bias, co, {
        kernel_shape: attr.ints([kh, kw]),
        pads: attr.ints(attrInts(n, 'pads') ?? [0, 0, 0, 0]),
        strides: attr.ints(attrInts(n, 'strides') ?? [1, 1]),
        dilations: attr.ints(attrInts(n, 'dilations') ?? [1, 1]),
      }, block, n.outputs[0], n.name);
      rewritten++;
      continue;
    }
    // x in NHWC (a weight gradient's im2col is gathered from it) where x is already blocked for a
    // convolution: the blocked tensor is NHWC when x is one block of channels, and reorders to
    // it otherwise. Both beat Transpose's gather of C-float columns (1.3 ms of 14×14×16 × 128).
    const xs = shape(n.inputs[0] ?? '');
    if (n.opType === 'Transpose' && xs?.length === 4 && (attrInts(n, 'perm') ?? []).join() === '0,2,3,1' && e.blocked.has(n.inputs[0])) {
      const xb = e.blocked.get(n.inputs[0]) as string;
      if (xs[1] === block) e.node('Reshape', [xb, e.int64s([xs[0], xs[2], xs[3], xs[1]])], undefined, undefined, n.outputs[0]);
      else e.node('ReorderOutput', [xb], { channels: attr.int(xs[1]), channels_last: attr.int(1) }, NCHWC, n.outputs[0]);
      continue;
    }
    if (plainTranspose(n, ws)) {
      // dX = ConvTranspose(dY, W), W [Co, Ci, kh, kw] of the forward conv: a correlation of dY
      // with W transposed to [Ci, Co] and flipped in space; strided ones by phases
      // ({@link polyphaseInputGrad}): the correlation over a zero-upsampled dY does stride² the
      // work, and measured slower than ConvTranspose.
      const [co, ci, kh, kw] = ws;
      const stride1 = (attrInts(n, 'strides') ?? [1, 1]).every((v) => v === 1);
      const dy = shape(n.inputs[0]);
      const dx = shape(n.outputs[0]);
      const p = attrInts(n, 'pads') ?? [0, 0, 0, 0];
      if (dy && dx && stride1) {
        // k−1−p zeros before; after, what makes the output X's size (output_padding included).
        const pads = [kh - 1 - p[0], kw - 1 - p[1], dx[2] + kh - 1 - dy[2] - (kh - 1 - p[0]), dx[3] + kw - 1 - dy[3] - (kw - 1 - p[1])];
        if (pads.every((v) => v >= 0)) {
          const wt = e.node('Transpose', [n.inputs[1]], { perm: attr.ints([1, 0, 2, 3]) });
          const flipped = e.node('Slice', [wt, e.int64s([-1, -1]), e.int64s([-kh - 1, -kw - 1]), e.int64s([2, 3]), e.int64s([-1, -1])]);
          e.sandwich(n.inputs[0], co, e.nchwcFilter(flipped, [ci, co, kh, kw], block).w, undefined, ci, { kernel_shape: attr.ints([kh, kw]), pads: attr.ints(pads), strides: attr.ints([1, 1]) }, block, n.outputs[0], n.name);
          rewritten++;
          continue;
        }
      }
      const ph = stridedPhases(n);
      if (ph && fits(ph)) {
        polyphaseInputGrad(e, ph, block, n.outputs[0]);
        rewritten++;
        continue;
      }
    }
    nodes.push(n);
  }
  if (rewritten === 0) return null;
  const graph = { ...model.graph, nodes: live(nodes, model.graph.outputs.map((o) => o.name)), initializers: [...(model.graph.initializers ?? []), ...e.initializers] };
  const extraOpsets = [...(model.extraOpsets ?? []).filter((o) => o.domain !== NCHWC), { domain: NCHWC, version: 1 }];
  return { ...model, graph, extraOpsets };
}

/**
 * Largest row of the phase-interleaving MatMul (its K, the multiply-adds per value it moves).
 * Rows of 32 and 98 measured faster than ConvTranspose (the CNN's two strided stages); the
 * next size up a stage, 392 (14 → 28 px), would cost 4× the 98 one per value: not measured,
 * left to ConvTranspose.
 */
const MAX_INTERLEAVE = 128;

/** One spatial axis of a strided input gradient split into output phases. */
interface PhaseAxis {
  /** Each tap k with its phase a ≡ k − p (mod s) and the dY offset d = (k − a − p)/s it reads. */
  taps: { a: number; k: number; d: number }[];
  /** The phase kernel holds tap k at u = dMax − d; dMax zeros of padding go before dY. */
  dMax: number;
  kp: number;
  /** Output rows per phase, ⌈dX length / s⌉. */
  phaseLen: number;
  /** The correlation's output length when it pads dY at the end only as far as phaseLen needs. */
  convLen: number;
}

/** A ConvTranspose(dY, W) as output phases (see {@link polyphaseInputGrad}). */
interface Phases {
  n: NodeSpec;
  co: number;
  ci: number;
  kernel: [number, number];
  strides: [number, number];
  batch: number;
  /** dY's and dX's spatial sizes. */
  dyHW: [number, number];
  dxHW: [number, number];
  y: PhaseAxis;
  x: PhaseAxis;
}

function phaseAxis(k: number, stride: number, pad: number, inLen: number, outLen: number): PhaseAxis {
  const taps: PhaseAxis['taps'] = [];
  for (let a = 0; a < stride; a++) for (let t = 0; t < k; t++) if ((t - a - pad) % stride === 0) taps.push({ a, k: t, d: (t - a - pad) / stride });
  const dMax = Math.max(...taps.map((t) => t.d));
  const kp = dMax - Math.min(...taps.map((t) => t.d)) + 1;
  const phaseLen = Math.ceil(outLen / stride);
  const padEnd = Math.max(0, phaseLen - inLen - dMax + kp - 1);
  return { taps, dMax, kp, phaseLen, convLen: inLen + dMax + padEnd - kp + 1 };
}

/** The phases of a strided 2-D ConvTranspose node, or null where they do not fit the form. */
function phasesOf(n: NodeSpec, ws: readonly number[], dyShape: readonly number[], dxShape: readonly number[]): Phases | null {
  const s = attrInts(n, 'strides') ?? [1, 1];
  const p = attrInts(n, 'pads') ?? [0, 0, 0, 0];
  if (s.length !== 2 || p.length !== 4 || dyShape.length !== 4 || dxShape.length !== 4) return null;
  const [co, ci, kh, kw] = ws;
  const y = phaseAxis(kh, s[0], p[0], dyShape[2], dxShape[2]);
  const x = phaseAxis(kw, s[1], p[1], dyShape[3], dxShape[3]);
  if (y.dMax < 0 || x.dMax < 0) return null;
  return { n, co, ci, kernel: [kh, kw], strides: [s[0], s[1]], batch: dyShape[0], dyHW: [dyShape[2], dyShape[3]], dxHW: [dxShape[2], dxShape[3]], y, x };
}

/** Whether each phase has a tap (not so for a kernel narrower than its stride: a strided 1×1 shortcut). */
function everyPhase(ph: Phases): boolean {
  return new Set(ph.y.taps.map((t) => t.a)).size === ph.strides[0] && new Set(ph.x.taps.map((t) => t.a)).size === ph.strides[1];
}

/** The phases' correlation on a grid of `grid` outputs per phase axis ({@link fits}): its blocked filters and its attributes. */
function phaseConv(e: Emitter, ph: Phases, grid: [number, number], block: number): { w: string; attrs: NonNullable<NodeSpec['attributes']> } {
  const { co, ci, strides: s } = ph;
  const [kh, kw] = ph.kernel;
  const padEnd = phasePadEnd(ph, grid);
  // Filters [s²·Ci, Co, kp_h, kp_w], output channel (ci, a, b), gathered from W (flattened, one
  // zero appended) straight into MLAS's blocked layout.
  const to = blockedChannels(s[0] * s[1] * ci, co, block);
  const logical = new Int32Array(to.o * to.i * ph.y.kp * ph.x.kp).fill(co * ci * kh * kw);
  for (let c = 0; c < ci; c++) {
    for (const ty of ph.y.taps) {
      for (const tx of ph.x.taps) {
        const o = (c * s[0] + ty.a) * s[1] + tx.a;
        const u = ph.y.dMax - ty.d;
        const v = ph.x.dMax - tx.d;
        for (let i = 0; i < co; i++) logical[((o * to.i + i) * ph.y.kp + u) * ph.x.kp + v] = ((i * ci + c) * kh + ty.k) * kw + tx.k;
      }
    }
  }
  const index = blockedOrder(logical, [to.o, to.i, ph.y.kp, ph.x.kp], block);
  const flat = e.node('Concat', [e.reshape(ph.n.inputs[1], [co * ci * kh * kw]), e.floats('zero', [1], new Float32Array(1))], { axis: attr.int(0) });
  const w = e.reshape(e.node('Gather', [flat, e.int64s(Array.from(index))], { axis: attr.int(0) }), [to.o, to.i, ph.y.kp, ph.x.kp]);
  return { w, attrs: { kernel_shape: attr.ints([ph.y.kp, ph.x.kp]), pads: attr.ints([ph.y.dMax, ph.x.dMax, padEnd[0], padEnd[1]]), strides: attr.ints([1, 1]) } };
}

/**
 * A strided input gradient dX = ConvTranspose(dY, W) (W [Co, Ci, kh, kw], strides s, pads p) by
 * phases: the output pixels y = s·i + a, x = s·j + b of one phase (a, b) read dY through the
 * taps ky ≡ a + p (mod s) only, so each phase is a stride-1 correlation of dY with a small
 * kernel, and all s² phases are one NCHWc convolution into s²·Ci channels (ci, a, b) — the
 * work of the forward convolution, up to the zero taps that even out the phases' kernels.
 * The phases are then interleaved by a MatMul with a 0/1 matrix along each row (b, i, j) →
 * (i, s·j + b) and a Gather of whole rows (a, i) → s·i + a; ORT's DepthToSpace (one thread)
 * cost what the convolution saved. ORT profile, batch 128, 2 threads: 32→16 channels at
 * 7→14 px ConvTranspose 3.5 → 2.0 ms; 64→32 at 4→7 px 3.15 → 1.9 ms.
 *
 * `side`, a second strided input gradient of the same stride and dX shape whose sum with this
 * one is all that is used (a residual block's strided 1×1 shortcut beside its first
 * convolution), is computed on the same phase grid into the blocked layout and added by the
 * NCHWc convolution's Sum input: no interleave and no Add of its own (alone it would keep its
 * ConvTranspose: phases without taps are zeros interleaved).
 *
 * Exact up to summation order (the 0/1 product adds zeros). Only where it {@link fits}: a
 * phase without taps, a phase's row longer than {@link MAX_INTERLEAVE} (large images) or a
 * side that would need dY cropped keep their ConvTranspose.
 */
function polyphaseInputGrad(e: Emitter, ph: Phases, block: number, out: string, side?: Phases): void {
  const { ci, batch, strides: s } = ph;
  const [h, wd] = ph.dxHW;
  const grid = phaseGrid(ph);
  const rowLen = s[1] * grid[0] * grid[1];
  const sum: string[] = [];
  if (side) {
    const c = phaseConv(e, side, grid, block);
    sum.push(e.node('Conv', [e.convInput(side.n.inputs[0], side.co, block), c.w], c.attrs, NCHWC, undefined, side.n.name));
  }
  const main = phaseConv(e, ph, grid, block);
  const y = e.node('Conv', [e.convInput(ph.n.inputs[0], ph.co, block), main.w, ...(sum.length ? ['', sum[0]] : [])], main.attrs, NCHWC, undefined, ph.n.name);
  const outC = s[0] * s[1] * ci;
  const phases = e.node('ReorderOutput', [y], { channels: attr.int(outC) }, NCHWC);

  // Rows (n, ci, a) of columns (b, i, j) → (i, x = s·j + b), then rows (a, i) → y = s·i + a.
  const phaseLen = ph.y.phaseLen;
  const across = new Float32Array(rowLen * phaseLen * wd);
  for (let b = 0; b < s[1]; b++) {
    for (let i = 0; i < Math.min(grid[0], phaseLen); i++) {
      for (let j = 0; j < grid[1]; j++) {
        const x = s[1] * j + b;
        if (x < wd) across[((b * grid[0] + i) * grid[1] + j) * phaseLen * wd + i * wd + x] = 1;
      }
    }
  }
  const rows = e.node('MatMul', [e.reshape(phases, [batch * ci * s[0], rowLen]), e.floats('interleave', [rowLen, phaseLen * wd], across)]);
  const down = Array.from({ length: h }, (_, r) => (r % s[0]) * phaseLen + Math.floor(r / s[0]));
  const picked = e.node('Gather', [e.reshape(rows, [batch * ci, s[0] * phaseLen, wd]), e.int64s(down)], { axis: attr.int(1) });
  e.node('Reshape', [picked, e.int64s([batch, ci, h, wd])], undefined, undefined, out);
}

/** The phase grid: outputs per phase axis of the correlation. */
function phaseGrid(ph: Phases): [number, number] {
  return [ph.y.convLen, ph.x.convLen];
}

/** The end pads a correlation of `ph` needs for `grid` outputs per phase axis (negative: dY would need cropping). */
function phasePadEnd(ph: Phases, grid: [number, number]): [number, number] {
  return [grid[0] - ph.dyHW[0] - ph.y.dMax + ph.y.kp - 1, grid[1] - ph.dyHW[1] - ph.x.dMax + ph.x.kp - 1];
}

/** Whether {@link polyphaseInputGrad} takes `ph` (with `side` added): every phase has a tap, rows fit, no cropping. */
function fits(ph: Phases, side?: Phases): boolean {
  const grid = phaseGrid(ph);
  const rowLen = ph.strides[1] * grid[0] * grid[1];
  return everyPhase(ph) && rowLen <= MAX_INTERLEAVE && (!side || phasePadEnd(side, grid).every((v) => v >= 0));
}

/**
 * Pairs of strided input gradients summed by one Add and used nowhere else, by the Add: the
 * one with a tap in every phase (the larger kernel if both) first; same strides and dX shape,
 * and {@link fits}.
 */
function phasePairs(nodes: readonly NodeSpec[], graphOutputs: readonly string[], phasesFor: (n: NodeSpec) => Phases | null): Map<NodeSpec, [Phases, Phases]> {
  const producer = new Map<string, NodeSpec>();
  const uses = new Map<string, number>();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const v of n.inputs) uses.set(v, (uses.get(v) ?? 0) + 1);
  }
  for (const o of graphOutputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  const pairs = new Map<NodeSpec, [Phases, Phases]>();
  for (const add of nodes) {
    if (add.opType !== 'Add' || (add.domain ?? '') !== '' || add.inputs.length !== 2 || add.inputs.some((v) => uses.get(v) !== 1)) continue;
    const [p, q] = add.inputs.map((v) => producer.get(v)).map((n) => (n ? phasesFor(n) : null));
    if (!p || !q || p.strides.join() !== q.strides.join() || p.dxHW.join() !== q.dxHW.join() || p.ci !== q.ci || p.batch !== q.batch) continue;
    const size = (v: Phases): number => (everyPhase(v) ? 1e9 : 0) + v.kernel[0] * v.kernel[1];
    const [main, side] = size(p) >= size(q) ? [p, q] : [q, p];
    if (fits(main, side)) pairs.set(add, [main, side]);
  }
  return pairs;
}

/** Flat indices of a filter [O, I, kh, kw] (C order) listed in {@link Emitter.blockFilter}'s layout. */
function blockedOrder(logical: Int32Array, [o, i, kh, kw]: readonly number[], b: number): Int32Array {
  const out = new Int32Array(logical.length);
  const ib = i < b ? 1 : b;
  let k = 0;
  for (let ob = 0; ob < o / b; ob++)
    for (let ii = 0; ii < i / ib; ii++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          for (let bi = 0; bi < ib; bi++)
            for (let bo = 0; bo < b; bo++) out[k++] = logical[(((ob * b + bo) * i + ii * ib + bi) * kh + y) * kw + x];
  return out;
}

/** The nodes some output depends on (a ReorderOutput whose NCHW value nothing reads is dropped). */
function live(nodes: NodeSpec[], outputs: string[]): NodeSpec[] {
  const used = upstreamValues(nodes, outputs);
  return nodes.filter((n) => n.outputs.some((o) => used.has(o)));
}
