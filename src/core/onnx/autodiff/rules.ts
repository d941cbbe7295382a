/**
 * Reverse-mode rules: for one forward node, the gradients of its inputs from the gradients
 * of its outputs, written as ONNX nodes onnxruntime's CPU kernels (MLAS) run well:
 *   Conv        dX = ConvTranspose(dY, W) (output_padding from the shapes);
 *               dW = one GEMM of dY and X's im2col matrix (one Gather of X in NHWC; for one
 *               input channel a convolution with one-hot filters), per group for grouped
 *               convolutions, by k×k strided slices for depthwise ones
 *   MaxPool     dX = ScatterElements(0, Indices, dY, reduction add) (overlapping windows add up)
 *   AveragePool dX = depthwise ConvTranspose(dY / window count, ones)
 *   BatchNorm   training mode: the closed form of Ioffe & Szegedy (2015) §3, three reductions;
 *               inference mode: a per-channel scale
 *   LayerNorm   the same closed form over the normalised axes
 * and the usual elementwise derivatives. Where torch and ONNX disagree at a kink (Clip,
 * HardSigmoid, HardSwish), the derivative follows torch (hardtanh's strict interval).
 */
import { NmlabError } from '../../../shared/errors';
import { attr, ONNX_DATA_TYPE, type NodeSpec } from '../builder';
import { attrFloat, attrInt, attrInts, attrString, axesOf, sliceParams, windowOf, windowOut, type ConstValues, type Window } from './shapes';
import { size, type GraphWriter, type Shape } from './writer';

/** What a training-mode BatchNorm / LayerNorm forward kept for its backward. */
export interface NormSaved {
  /** x − mean, and 1/√(var + ε) (broadcastable). */
  xc: string;
  rstd: string;
  /** Reduction axes and element count per statistic. */
  axes: number[];
  count: number;
}

export interface RuleCtx {
  w: GraphWriter;
  n: NodeSpec;
  /** Gradient of each output (null: nothing flows back through it). */
  dy: (string | null)[];
  /** Whether input i needs a gradient. */
  need: boolean[];
  consts: ConstValues;
  saved: Map<string, NormSaved>;
  /** Model opset before the training graph's upgrade (Softmax's axis meaning changed at 13). */
  modelOpset: number;
}

export type Rule = (c: RuleCtx) => (string | null)[];

const x0 = (c: RuleCtx): string => c.n.inputs[0];
const y0 = (c: RuleCtx): string => c.n.outputs[0];
const dy0 = (c: RuleCtx): string => c.dy[0] as string;

/** dY·f'(x) given f' as a value name. */
function chain(c: RuleCtx, deriv: string): (string | null)[] {
  return [c.w.bin('Mul', dy0(c), deriv)];
}

/** dY where `cond` holds, else 0. */
function mask(c: RuleCtx, cond: string): string {
  return c.w.op('Where', [cond, dy0(c), c.w.scalar(0)], c.w.shape(dy0(c)));
}

function boolOp(c: RuleCtx, op: string, a: string, b: string): string {
  return c.w.op(op, [a, b], c.w.shape(a), undefined, { type: 'bool' });
}

function inRange(c: RuleCtx, x: string, lo: number, hi: number): string {
  const parts: string[] = [];
  if (Number.isFinite(lo)) parts.push(boolOp(c, 'Greater', x, c.w.scalar(lo)));
  if (Number.isFinite(hi)) parts.push(boolOp(c, 'Less', x, c.w.scalar(hi)));
  if (parts.length === 1) return parts[0];
  return c.w.op('And', parts, c.w.shape(x), undefined, { type: 'bool' });
}

function clipBounds(c: RuleCtx): [number, number] {
  const v = (i: number, d: number): number => {
    const name = c.n.inputs[i];
    if (!name) return attrFloat(c.n, i === 1 ? 'min' : 'max', d);
    const k = c.consts.get(name);
    if (!k) throw new NmlabError('UNSUPPORTED', `ONNX node "${c.n.name ?? y0(c)}" (Clip): its bounds must be constants to differentiate it`);
    return k.values[0];
  };
  return [v(1, -Infinity), v(2, Infinity)];
}

function norm(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

// ---- convolution ----

function convWindow(c: RuleCtx): Window {
  const x = c.w.shape(x0(c));
  const wt = c.w.shape(c.n.inputs[1]);
  return windowOf(c.n, x, attrInts(c.n, 'kernel_shape') ?? [...wt.slice(2)]);
}

/** output_padding making ConvTranspose(dY) the size of X. */
function outputPadding(inShape: Shape, outShape: Shape, win: Window): number[] {
  const r = win.kernel.length;
  return win.kernel.map((k, i) => {
    const made = (outShape[2 + i] - 1) * win.strides[i] - win.pads[i] - win.pads[i + r] + win.dilations[i] * (k - 1) + 1;
    return inShape[2 + i] - made;
  });
}

function convInputGrad(w: GraphWriter, dy: string, weight: string, xShape: Shape, win: Window, group: number): string {
  const op = outputPadding(xShape, w.shape(dy), win);
  return w.op('ConvTranspose', [dy, weight], xShape, {
    strides: attr.ints(win.strides),
    pads: attr.ints(win.pads),
    dilations: attr.ints(win.dilations),
    group: attr.int(group),
    kernel_shape: attr.ints(win.kernel),
    ...(op.some((v) => v !== 0) ? { output_padding: attr.ints(op) } : {}),
  });
}

/**
 * dW of an ungrouped 2-D convolution as one GEMM over the im2col matrix of X:
 *   dW (Co × k·Ci, tap-major) = dY (Co × N·Ho·Wo) · cols (N·Ho·Wo × k·Ci)
 * cols is one Gather of X in NHWC: for each output pixel, the Ci-vectors of the k pixels its
 * window reads, an index past the image's pixels reading a zero pixel joined to X for the
 * padding. onnxruntime's Gather copies those Ci-float blocks on every intra-op thread, where
 * the k strided Slices it replaced ran on one and a Pad copied X once more (the CNN's step at 2
 * threads, ORT profile, two alternate runs: Slice + Pad 13.0–13.7 ms → Gather 7.3–7.4 ms, the
 * zero pixels' Concats within the noise of the Concats before). The product is a
 * MatMul over four parts of the batch summed after: MLAS does not split a small Co × k·Ci
 * product's long K over threads, but does a batch (three alternate runs: 9.5–13.7 ms at 2
 * parts → 8.9–9.5 at 4; 8 and 16 no better; one per image 10.9–11.8 ms and 5.3–5.7 ms of
 * ReduceSum).
 */
function convWeightGrad(w: GraphWriter, x: string, dy: string, win: Window, kernelShape: Shape): string {
  if (win.kernel.length !== 2) return convWeightGradByConv(w, x, dy, win, kernelShape);
  const xs = w.shape(x);
  const ys = w.shape(dy);
  const [n, ci, h, wd] = xs;
  const co = ys[1];
  const [oh, ow] = [ys[2], ys[3]];
  const k = win.kernel[0] * win.kernel[1];
  if (ci === 1 && k > 1) return singleChannelWeightGrad(w, x, dy, win, kernelShape);
  const pixels = w.reshape(w.transpose(x, [0, 2, 3, 1]), [n, h * wd, ci]);
  // Pixel index of each (output pixel, tap), tap-major within a pixel; h·wd (the zero pixel) where
  // the window reads padding.
  const index: number[] = [];
  let padded = false;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let ky = 0; ky < win.kernel[0]; ky++) {
        for (let kx = 0; kx < win.kernel[1]; kx++) {
          const iy = oy * win.strides[0] + ky * win.dilations[0] - win.pads[0];
          const ix = ox * win.strides[1] + kx * win.dilations[1] - win.pads[1];
          const inside = iy >= 0 && iy < h && ix >= 0 && ix < wd;
          padded ||= !inside;
          index.push(inside ? iy * wd + ix : h * wd);
        }
      }
    }
  }
  const source = padded ? w.op('Concat', [pixels, w.zeros([n, 1, ci])], [n, h * wd + 1, ci], { axis: attr.int(1) }) : pixels;
  const cols = index.every((v, i) => v === i) && index.length === h * wd ? pixels : w.op('Gather', [source, w.ints(index)], [n, oh * ow * k, ci], { axis: attr.int(1) });
  const taps = im2colProduct(w, dy, cols, k * ci);
  return k === 1 ? w.reshape(taps, kernelShape) : w.reshape(w.transpose(w.reshape(taps, [co, k, ci]), [0, 2, 1]), kernelShape);
}

/**
 * dY (N × Co × Ho × Wo) times an im2col matrix `cols` (N × Ho·Wo × width, rows in dY's pixel
 * order): the Co × width product, as a MatMul over four parts of the batch summed after.
 */
function im2colProduct(w: GraphWriter, dy: string, cols: string, width: number): string {
  const [n, co, oh, ow] = w.shape(dy);
  const parts = [4, 2, 1].find((p) => n % p === 0) as number;
  const rows = (n / parts) * oh * ow;
  // dY as [parts, Co, rows]: the rows of each part in cols' (image, y, x) order.
  const dyParts = w.reshape(w.transpose(w.reshape(dy, [parts, n / parts, co, oh * ow]), [0, 2, 1, 3]), [parts, co, rows]);
  const product = w.op('MatMul', [dyParts, w.reshape(cols, [parts, rows, width])], [parts, co, width]);
  return parts === 1 ? w.reshape(product, [co, width]) : w.reduceSum(product, [0], false);
}

/**
 * dW of a one-channel convolution (an image stem): its im2col matrix is a convolution of X
 * with one-hot filters, one output channel per tap, padded to 16 channels so that the NCHWc
 * rewrite hands it over in NHWC without a copy. A Gather of single floats was 1.3 ms of the
 * CNN's step (ORT profile, 2 threads) against 0.3 ms for this convolution. Exact: each output
 * is one input times 1 plus zeros.
 */
function singleChannelWeightGrad(w: GraphWriter, x: string, dy: string, win: Window, kernelShape: Shape): string {
  const [n] = w.shape(x);
  const [co, , oh, ow] = w.shape(dy);
  const k = win.kernel[0] * win.kernel[1];
  const width = Math.ceil(k / 16) * 16;
  const onehot = new Float32Array(width * k);
  for (let t = 0; t < k; t++) onehot[t * k + t] = 1;
  const filters = w.tensor('im2col_onehot', [width, 1, ...win.kernel], onehot);
  const cols = w.op('Conv', [x, filters], [n, width, oh, ow], {
    strides: attr.ints(win.strides),
    pads: attr.ints(win.pads),
    dilations: attr.ints(win.dilations),
    kernel_shape: attr.ints(win.kernel),
  });
  const taps = im2colProduct(w, dy, w.reshape(w.transpose(cols, [0, 2, 3, 1]), [n, oh * ow, width]), width);
  const used = w.op('Slice', [taps, w.ints([0]), w.ints([k]), w.ints([1])], [co, k]);
  return w.reshape(used, kernelShape);
}

/**
 * dW of an ungrouped convolution of any rank: a convolution of the inputs (channels as
 * batch) with the output gradients (batch as channels), strides and dilations exchanged. The
 * end padding is chosen so the result is exactly the kernel's size (input rows no window
 * reads are cropped).
 */
function convWeightGradByConv(w: GraphWriter, x: string, dy: string, win: Window, kernelShape: Shape): string {
  const r = win.kernel.length;
  const xs = w.shape(x);
  const ys = w.shape(dy);
  const padsEnd: number[] = [];
  const crop: number[] = [];
  for (let i = 0; i < r; i++) {
    const need = win.dilations[i] * (win.kernel[i] - 1) + win.strides[i] * (ys[2 + i] - 1) + 1 - xs[2 + i] - win.pads[i];
    padsEnd.push(Math.max(0, need));
    crop.push(Math.min(0, need));
  }
  let xin = x;
  if (crop.some((v) => v < 0)) {
    const ends = crop.map((v, i) => xs[2 + i] + v);
    xin = w.op('Slice', [x, w.ints(crop.map(() => 0)), w.ints(ends), w.ints(crop.map((_, i) => 2 + i))], xs.map((d, i) => (i >= 2 ? ends[i - 2] : d)));
  }
  const perm = [1, 0, ...Array.from({ length: r }, (_, i) => 2 + i)];
  const xt = w.transpose(xin, perm);
  const dyt = w.transpose(dy, perm);
  const g = w.op('Conv', [xt, dyt], [kernelShape[1], kernelShape[0], ...win.kernel], {
    strides: attr.ints(win.dilations),
    dilations: attr.ints(win.strides),
    pads: attr.ints([...win.pads.slice(0, r), ...padsEnd]),
    kernel_shape: attr.ints(ys.slice(2)),
    group: attr.int(1),
  });
  return w.transpose(g, perm);
}

/** dW of a depthwise convolution (one input channel per group), one strided slice per tap. */
function depthwiseWeightGrad(w: GraphWriter, x: string, dy: string, win: Window, kernelShape: Shape): string {
  const r = win.kernel.length;
  if (r !== 2) throw new NmlabError('UNSUPPORTED', 'autodiff: depthwise convolutions are supported in 2-D only');
  const xs = w.shape(x);
  const ys = w.shape(dy);
  const [n, cin] = xs;
  const cout = kernelShape[0];
  const mult = cout / cin;
  const padded = win.pads.some((p) => p > 0)
    ? w.op('Pad', [x, w.ints([0, 0, win.pads[0], win.pads[1], 0, 0, win.pads[2], win.pads[3]])], [n, cin, xs[2] + win.pads[0] + win.pads[2], xs[3] + win.pads[1] + win.pads[3]])
    : x;
  const dy5 = w.reshape(dy, [n, cin, mult, ys[2], ys[3]]);
  const taps: string[] = [];
  for (let ky = 0; ky < win.kernel[0]; ky++) {
    for (let kx = 0; kx < win.kernel[1]; kx++) {
      const sy = ky * win.dilations[0];
      const sx = kx * win.dilations[1];
      const sl = w.op('Slice', [padded, w.ints([sy, sx]), w.ints([sy + (ys[2] - 1) * win.strides[0] + 1, sx + (ys[3] - 1) * win.strides[1] + 1]), w.ints([2, 3]), w.ints(win.strides)], [n, cin, ys[2], ys[3]]);
      const prod = w.bin('Mul', dy5, w.reshape(sl, [n, cin, 1, ys[2], ys[3]]));
      taps.push(w.reshape(w.reduceSum(prod, [0, 3, 4], false), [cout, 1]));
    }
  }
  const cat = w.op('Concat', taps, [cout, taps.length], { axis: attr.int(1) });
  return w.reshape(cat, kernelShape);
}

const conv: Rule = (c) => {
  const { w, n } = c;
  const dy = dy0(c);
  const xShape = w.shape(x0(c));
  const wShape = w.shape(n.inputs[1]);
  const group = attrInt(n, 'group', 1);
  const win = convWindow(c);
  const out: (string | null)[] = [null, null, null];
  if (c.need[0]) out[0] = convInputGrad(w, dy, n.inputs[1], xShape, win, group);
  if (c.need[1]) {
    if (group === 1) out[1] = convWeightGrad(w, x0(c), dy, win, wShape);
    else if (group === xShape[1] && wShape[1] === 1) out[1] = depthwiseWeightGrad(w, x0(c), dy, win, wShape);
    else {
      const ci = xShape[1] / group;
      const co = wShape[0] / group;
      const xs = w.split(x0(c), 1, new Array<number>(group).fill(ci));
      const ds = w.split(dy, 1, new Array<number>(group).fill(co));
      const parts = xs.map((xg, i) => convWeightGrad(w, xg, ds[i], win, [co, ci, ...win.kernel]));
      out[1] = w.op('Concat', parts, wShape, { axis: attr.int(0) });
    }
  }
  if (c.need[2] && n.inputs[2]) out[2] = w.reduceSum(dy, [0, ...win.kernel.map((_, i) => 2 + i)], false);
  return out;
};

// ---- pooling ----

const maxPool: Rule = (c) => {
  const { w, n } = c;
  const xs = w.shape(x0(c));
  const idx = n.outputs[1];
  if (attrInt(n, 'storage_order', 0) !== 0) throw new NmlabError('UNSUPPORTED', `ONNX node "${n.name ?? y0(c)}" (MaxPool): storage_order 1 is not supported`);
  const total = size(xs);
  const flatIdx = w.op('Reshape', [idx, w.ints([-1])], [size(w.shape(idx))], undefined, { type: 'int64' });
  const flatDy = w.reshape(dy0(c), [size(w.shape(dy0(c)))]);
  const scattered = w.op('ScatterElements', [w.zeros([total]), flatIdx, flatDy], [total], { axis: attr.int(0), reduction: attr.string('add') });
  return [w.reshape(scattered, xs)];
};

const averagePool: Rule = (c) => {
  const { w, n } = c;
  const xs = w.shape(x0(c));
  const ys = w.shape(y0(c));
  const k = attrInts(n, 'kernel_shape') ?? [];
  if (k.length !== 2) throw new NmlabError('UNSUPPORTED', `ONNX node "${n.name ?? y0(c)}" (AveragePool): only 2-D pooling is supported`);
  const ceil = attrInt(n, 'ceil_mode', 0) === 1;
  const win = windowOf(n, xs, k, ceil);
  const includePad = attrInt(n, 'count_include_pad', 0) === 1;
  // Divisor of each output position: the window's cells inside the input (or inside the
  // padded input with count_include_pad), as onnxruntime counts them.
  const [oh, ow] = [ys[2], ys[3]];
  const inv = new Float32Array(oh * ow);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      const y0i = i * win.strides[0] - win.pads[0];
      const x0j = j * win.strides[1] - win.pads[1];
      const lo = (v: number, lim: number): number => (includePad ? Math.max(v, -lim) : Math.max(v, 0));
      const hiY = includePad ? Math.min(y0i + k[0], xs[2] + win.pads[2]) : Math.min(y0i + k[0], xs[2]);
      const hiX = includePad ? Math.min(x0j + k[1], xs[3] + win.pads[3]) : Math.min(x0j + k[1], xs[3]);
      const cnt = (hiY - lo(y0i, win.pads[0])) * (hiX - lo(x0j, win.pads[1]));
      inv[i * ow + j] = 1 / cnt;
    }
  }
  const scaled = w.bin('Mul', dy0(c), w.tensor('avgpool_inv_count', [1, 1, oh, ow], inv));
  const ones = w.tensor('avgpool_ones', [xs[1], 1, k[0], k[1]], new Float32Array(xs[1] * k[0] * k[1]).fill(1));
  void windowOut;
  return [convInputGrad(w, scaled, ones, xs, { kernel: k, strides: win.strides, pads: win.pads, dilations: [1, 1] }, xs[1])];
};

const globalAveragePool: Rule = (c) => {
  const xs = c.w.shape(x0(c));
  // One broadcasting Mul by a constant window of 1/count: Expand copied the scaled dY on one
  // thread (the CNN's step, ORT profile at 2 threads: Mul + Expand 0.72 ms → Mul 0.17 ms).
  const window = xs.slice(2);
  const inv = c.w.tensor('gap_inv_count', [1, 1, ...window], new Float32Array(size(window)).fill(1 / size(window)));
  return [c.w.op('Mul', [dy0(c), inv], xs)];
};

// ---- normalisation ----

/** dX of a normalisation y = γ·x̂ + β over `axes` given dx̂ = γ·dY (Ioffe & Szegedy 2015, §3). */
function normInputGrad(w: GraphWriter, dxhat: string, s: NormSaved): string {
  const xhat = w.bin('Mul', s.xc, s.rstd);
  const m1 = w.reduceMean(dxhat, s.axes, true);
  const m2 = w.reduceMean(w.bin('Mul', dxhat, xhat), s.axes, true);
  const inner = w.bin('Sub', w.bin('Sub', dxhat, m1), w.bin('Mul', xhat, m2));
  return w.bin('Mul', inner, s.rstd);
}

const batchNorm: Rule = (c) => {
  const { w, n } = c;
  const dy = dy0(c);
  const xs = w.shape(x0(c));
  const cdim = xs[1];
  const bshape = xs.map((d, i) => (i === 1 ? d : 1));
  const gamma = w.reshape(n.inputs[1], bshape);
  const reduceAxes = xs.map((_, i) => i).filter((i) => i !== 1);
  const s = c.saved.get(y0(c));
  const out: (string | null)[] = [null, null, null, null, null];
  if (s) {
    // training mode: statistics of this batch
    const sumDy = w.reduceSum(dy, reduceAxes, true);
    const sumDyXc = w.reduceSum(w.bin('Mul', dy, s.xc), reduceAxes, true);
    if (c.need[1]) out[1] = w.reshape(w.bin('Mul', sumDyXc, s.rstd), [cdim]);
    if (c.need[2]) out[2] = w.reshape(sumDy, [cdim]);
    if (c.need[0]) {
      // dx = a·dy − (a·r·Σdy·xc/M)·xc − a·Σdy/M with a = γ·r, r = 1/√(σ²+ε)
      const a = w.bin('Mul', gamma, s.rstd);
      const kx = w.bin('Mul', w.bin('Mul', a, w.bin('Mul', s.rstd, s.rstd)), w.bin('Mul', sumDyXc, w.scalar(-1 / s.count)));
      const shift = w.bin('Mul', a, w.bin('Mul', sumDy, w.scalar(-1 / s.count)));
      out[0] = w.bin('Add', w.bin('Add', w.bin('Mul', dy, a), w.bin('Mul', s.xc, kx)), shift);
    }
    return out;
  }
  // inference mode: y = γ·(x − μ)/√(σ²+ε) + β with fixed statistics
  const eps = attrFloat(n, 'epsilon', 1e-5);
  const rstd = w.reshape(w.un('Reciprocal', w.un('Sqrt', w.bin('Add', n.inputs[4], w.scalar(eps)))), bshape);
  if (c.need[0]) out[0] = w.bin('Mul', dy, w.bin('Mul', gamma, rstd));
  if (c.need[1]) {
    const xhat = w.bin('Mul', w.bin('Sub', x0(c), w.reshape(n.inputs[3], bshape)), rstd);
    out[1] = w.reduceSum(w.bin('Mul', dy, xhat), reduceAxes, false);
  }
  if (c.need[2]) out[2] = w.reduceSum(dy, reduceAxes, false);
  return out;
};

const layerNorm: Rule = (c) => {
  const { w, n } = c;
  const dy = dy0(c);
  const s = c.saved.get(y0(c));
  if (!s) throw new Error('autodiff: LayerNormalization forward was not expanded');
  const out: (string | null)[] = [null, null, null];
  const scaleShape = w.shape(n.inputs[1]);
  if (c.need[0]) out[0] = normInputGrad(w, w.bin('Mul', dy, n.inputs[1]), s);
  if (c.need[1]) out[1] = w.unbroadcast(w.bin('Mul', dy, w.bin('Mul', s.xc, s.rstd)), scaleShape);
  if (c.need[2] && n.inputs[2]) out[2] = w.unbroadcast(dy, w.shape(n.inputs[2]));
  return out;
};

// ---- linear algebra ----

const gemm: Rule = (c) => {
  const { w, n } = c;
  const [a, b, cc] = n.inputs;
  const dy = dy0(c);
  const ta = attrInt(n, 'transA', 0);
  const tb = attrInt(n, 'transB', 0);
  const alpha = attrFloat(n, 'alpha', 1);
  const beta = attrFloat(n, 'beta', 1);
  const out: (string | null)[] = [null, null, null];
  const gm = (p: string, q: string, tp: number, tq: number, shape: Shape): string => w.op('Gemm', [p, q], shape, { transA: attr.int(tp), transB: attr.int(tq), alpha: attr.float(alpha) });
  if (c.need[0]) out[0] = ta ? gm(b, dy, tb, 1, w.shape(a)) : gm(dy, b, 0, 1 - tb, w.shape(a));
  if (c.need[1]) out[1] = tb ? gm(dy, a, 1, ta, w.shape(b)) : gm(a, dy, 1 - ta, 0, w.shape(b));
  if (c.need[2] && cc) {
    const g = w.unbroadcast(dy, w.shape(cc));
    out[2] = beta === 1 ? g : w.bin('Mul', g, w.scalar(beta));
  }
  return out;
};

const matMul: Rule = (c) => {
  const { w, n } = c;
  const [a, b] = n.inputs;
  const dy = dy0(c);
  const as = w.shape(a);
  const bs = w.shape(b);
  const ys = w.shape(dy);
  const swap = (r: number): number[] => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
  const out: (string | null)[] = [null, null];
  if (c.need[0]) {
    const bt = w.transpose(b, swap(bs.length));
    out[0] = w.unbroadcast(w.op('MatMul', [dy, bt], [...ys.slice(0, -1), bs[bs.length - 2]]), as);
  }
  if (c.need[1]) {
    if (bs.length === 2) {
      // a shared weight: one GEMM over all leading axes
      const k = as[as.length - 1];
      out[1] = w.op('Gemm', [w.reshape(a, [size(as) / k, k]), w.reshape(dy, [size(ys) / ys[ys.length - 1], ys[ys.length - 1]])], bs, { transA: attr.int(1) });
    } else {
      const at = w.transpose(a, swap(as.length));
      out[1] = w.unbroadcast(w.op('MatMul', [at, dy], [...ys.slice(0, -2), as[as.length - 1], ys[ys.length - 1]]), bs);
    }
  }
  return out;
};

// ---- elementwise ----

const add: Rule = (c) => c.n.inputs.map((inp, i) => (c.need[i] ? c.w.unbroadcast(dy0(c), c.w.shape(inp)) : null));

const sub: Rule = (c) => [
  c.need[0] ? c.w.unbroadcast(dy0(c), c.w.shape(c.n.inputs[0])) : null,
  c.need[1] ? c.w.unbroadcast(c.w.un('Neg', dy0(c)), c.w.shape(c.n.inputs[1])) : null,
];

const mul: Rule = (c) => {
  const [a, b] = c.n.inputs;
  return [c.need[0] ? c.w.unbroadcast(c.w.bin('Mul', dy0(c), b), c.w.shape(a)) : null, c.need[1] ? c.w.unbroadcast(c.w.bin('Mul', dy0(c), a), c.w.shape(b)) : null];
};

const div: Rule = (c) => {
  const { w } = c;
  const [a, b] = c.n.inputs;
  return [
    c.need[0] ? w.unbroadcast(w.bin('Div', dy0(c), b), w.shape(a)) : null,
    c.need[1] ? w.unbroadcast(w.un('Neg', w.bin('Div', w.bin('Mul', dy0(c), y0(c)), b)), w.shape(b)) : null,
  ];
};

const pow: Rule = (c) => {
  const { w } = c;
  const [a, e] = c.n.inputs;
  const out: (string | null)[] = [null, null];
  if (c.need[0]) {
    const k = c.consts.get(e);
    const deriv = k && k.values.length === 1 && k.values[0] === 2 ? w.bin('Mul', a, w.scalar(2)) : w.bin('Mul', e, w.bin('Pow', a, w.bin('Sub', e, w.scalar(1))));
    out[0] = w.unbroadcast(w.bin('Mul', dy0(c), deriv), w.shape(a));
  }
  if (c.need[1]) out[1] = w.unbroadcast(w.bin('Mul', dy0(c), w.bin('Mul', y0(c), w.un('Log', a))), w.shape(e));
  return out;
};

// Mul by the mask as 0/1 floats, not Where(y > 0, dY, 0): onnxruntime's Where makes three passes
// (each branch, then a merge) on one thread, Cast and Mul one each on every thread (ORT profile,
// 2 threads: Where 4.2–4.9 ms → Cast 1.0–1.4 ms and 0.1–1.5 ms more Mul). Unlike Where, an
// infinite dY where y = 0 gives NaN, not 0; a step with an infinite gradient is lost either way.
const relu: Rule = (c) => chain(c, c.w.op('Cast', [boolOp(c, 'Greater', y0(c), c.w.scalar(0))], c.w.shape(y0(c)), { to: attr.int(ONNX_DATA_TYPE.float32) }));

const leakyRelu: Rule = (c) => {
  const alpha = attrFloat(c.n, 'alpha', 0.01);
  const slope = c.w.op('Where', [boolOp(c, 'Greater', x0(c), c.w.scalar(0)), c.w.scalar(1), c.w.scalar(alpha)], c.w.shape(x0(c)));
  return chain(c, slope);
};

const clip: Rule = (c) => {
  const [lo, hi] = clipBounds(c);
  return [mask(c, inRange(c, x0(c), lo, hi))];
};

const hardSigmoid: Rule = (c) => {
  const alpha = attrFloat(c.n, 'alpha', 0.2);
  const beta = attrFloat(c.n, 'beta', 0.5);
  const inside = inRange(c, x0(c), -beta / alpha, (1 - beta) / alpha);
  return [c.w.bin('Mul', mask(c, inside), c.w.scalar(alpha))];
};

/** torch: 0 for x < −3, x/3 + ½ for −3 ≤ x ≤ 3, 1 above. */
const hardSwish: Rule = (c) => {
  const { w } = c;
  const x = x0(c);
  const mid = w.bin('Add', w.bin('Mul', x, w.scalar(1 / 3)), w.scalar(0.5));
  const upper = w.op('Where', [boolOp(c, 'LessOrEqual', x, w.scalar(3)), mid, w.scalar(1)], w.shape(x));
  const deriv = w.op('Where', [boolOp(c, 'Less', x, w.scalar(-3)), w.scalar(0), upper], w.shape(x));
  return chain(c, deriv);
};

const sigmoid: Rule = (c) => chain(c, c.w.bin('Mul', y0(c), c.w.bin('Sub', c.w.scalar(1), y0(c))));
const tanh: Rule = (c) => chain(c, c.w.bin('Sub', c.w.scalar(1), c.w.bin('Mul', y0(c), y0(c))));
const exp: Rule = (c) => chain(c, y0(c));
const log: Rule = (c) => [c.w.bin('Div', dy0(c), x0(c))];
const neg: Rule = (c) => [c.w.un('Neg', dy0(c))];
const reciprocal: Rule = (c) => [c.w.un('Neg', c.w.bin('Mul', dy0(c), c.w.bin('Mul', y0(c), y0(c))))];
const sqrt: Rule = (c) => [c.w.bin('Div', c.w.bin('Mul', dy0(c), c.w.scalar(0.5)), y0(c))];
const erf: Rule = (c) => chain(c, c.w.bin('Mul', c.w.un('Exp', c.w.un('Neg', c.w.bin('Mul', x0(c), x0(c)))), c.w.scalar(2 / Math.sqrt(Math.PI))));

const gelu: Rule = (c) => {
  if (attrString(c.n, 'approximate', 'none') !== 'none') throw new NmlabError('UNSUPPORTED', `ONNX node "${c.n.name ?? y0(c)}" (Gelu): only approximate="none" is supported`);
  const { w } = c;
  const x = x0(c);
  // Φ(x) + x·φ(x)
  const cdf = w.bin('Mul', w.bin('Add', w.un('Erf', w.bin('Mul', x, w.scalar(Math.SQRT1_2))), w.scalar(1)), w.scalar(0.5));
  const pdf = w.bin('Mul', w.un('Exp', w.bin('Mul', w.bin('Mul', x, x), w.scalar(-0.5))), w.scalar(1 / Math.sqrt(2 * Math.PI)));
  return chain(c, w.bin('Add', cdf, w.bin('Mul', x, pdf)));
};

function softmaxAxis(c: RuleCtx): number {
  const r = c.w.shape(x0(c)).length;
  const ax = norm(attrInt(c.n, 'axis', c.modelOpset >= 13 ? -1 : 1), r);
  if (c.modelOpset < 13 && ax !== r - 1) throw new NmlabError('UNSUPPORTED', `ONNX node "${c.n.name ?? y0(c)}" (${c.n.opType}): opset < 13 with axis ≠ last is not supported`);
  return ax;
}

const softmax: Rule = (c) => {
  const { w } = c;
  const ax = softmaxAxis(c);
  const s = w.reduceSum(w.bin('Mul', dy0(c), y0(c)), [ax], true);
  return [w.bin('Mul', y0(c), w.bin('Sub', dy0(c), s))];
};

const logSoftmax: Rule = (c) => {
  const { w } = c;
  const ax = softmaxAxis(c);
  return [w.bin('Sub', dy0(c), w.bin('Mul', w.un('Exp', y0(c)), w.reduceSum(dy0(c), [ax], true)))];
};

// ---- shape ----

const reshapeLike: Rule = (c) => [c.w.reshape(dy0(c), c.w.shape(x0(c)))];

/** A float-to-float Cast: the gradient cast back to the input's type. */
const cast: Rule = (c) => {
  const from = c.w.types.get(x0(c)) ?? 'float32';
  if (from === (c.w.types.get(y0(c)) ?? 'float32')) return [dy0(c)];
  return [c.w.op('Cast', [dy0(c)], c.w.shape(x0(c)), { to: attr.int(ONNX_DATA_TYPE[from]) }, { type: from })];
};

const transpose: Rule = (c) => {
  const xs = c.w.shape(x0(c));
  const perm = attrInts(c.n, 'perm') ?? xs.map((_, i) => xs.length - 1 - i);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return [c.w.transpose(dy0(c), inv)];
};

const concat: Rule = (c) => {
  const xs = c.w.shape(x0(c));
  const ax = norm(attrInt(c.n, 'axis', 0), xs.length);
  const parts = c.w.split(dy0(c), ax, c.n.inputs.map((i) => c.w.shape(i)[ax]));
  return parts.map((p, i) => (c.need[i] ? p : null));
};

const split: Rule = (c) => {
  const { w } = c;
  const xs = w.shape(x0(c));
  const ax = norm(attrInt(c.n, 'axis', 0), xs.length);
  const parts = c.n.outputs.map((o, i) => c.dy[i] ?? w.zeros(w.shape(o)));
  return [w.op('Concat', parts, xs, { axis: attr.int(ax) })];
};

const slice: Rule = (c) => {
  const { w } = c;
  const xs = w.shape(x0(c));
  const p = sliceParams(c.n, xs, c.consts);
  if (p.steps.some((s) => s !== 1)) throw new NmlabError('UNSUPPORTED', `ONNX node "${c.n.name ?? y0(c)}" (Slice): steps other than 1 cannot be differentiated yet`);
  const pads = new Array<number>(2 * xs.length).fill(0);
  p.axes.forEach((ax, i) => {
    pads[ax] = p.starts[i];
    pads[ax + xs.length] = xs[ax] - p.ends[i];
  });
  return [w.op('Pad', [dy0(c), w.ints(pads)], xs)];
};

const gather: Rule = (c) => {
  const { w, n } = c;
  const xs = w.shape(x0(c));
  const ax = norm(attrInt(n, 'axis', 0), xs.length);
  const is = w.shape(n.inputs[1]);
  const k = size(is);
  const updShape = [...xs.slice(0, ax), k, ...xs.slice(ax + 1)];
  const upd = w.reshape(dy0(c), updShape);
  const idx1 = w.op('Reshape', [n.inputs[1], w.ints([k])], [k], undefined, { type: 'int64' });
  const idx64 = w.types.get(n.inputs[1]) === 'int64' ? idx1 : w.op('Cast', [idx1], [k], { to: attr.int(7) }, { type: 'int64' });
  const bcast = updShape.map((_, i) => (i === ax ? k : 1));
  const idx = w.op('Expand', [w.op('Reshape', [idx64, w.ints(bcast)], bcast, undefined, { type: 'int64' }), w.ints(updShape)], updShape, undefined, { type: 'int64' });
  return [w.op('ScatterElements', [w.zeros(xs), idx, upd], xs, { axis: attr.int(ax), reduction: attr.string('add') }), null];
};

const reduceMeanOrSum: Rule = (c) => {
  const { w, n } = c;
  const xs = w.shape(x0(c));
  const axes = (axesOf(n, 1, c.consts) ?? (attrInt(n, 'noop_with_empty_axes', 0) ? [] : xs.map((_, i) => i))).map((a) => norm(a, xs.length));
  const kept = xs.map((d, i) => (axes.includes(i) ? 1 : d));
  let g = w.reshape(dy0(c), kept);
  if (n.opType === 'ReduceMean') g = w.bin('Mul', g, w.scalar(1 / axes.reduce((p, a) => p * xs[a], 1)));
  return [w.op('Expand', [g, w.ints(xs)], xs)];
};

const expand: Rule = (c) => [c.w.unbroadcast(dy0(c), c.w.shape(x0(c)))];

const where: Rule = (c) => {
  const { w, n } = c;
  const cond = n.inputs[0];
  const z = w.scalar(0);
  return [
    null,
    c.need[1] ? w.unbroadcast(w.op('Where', [cond, dy0(c), z], w.shape(dy0(c))), w.shape(n.inputs[1])) : null,
    c.need[2] ? w.unbroadcast(w.op('Where', [cond, z, dy0(c)], w.shape(dy0(c))), w.shape(n.inputs[2])) : null,
  ];
};

const pad: Rule = (c) => {
  const { w, n } = c;
  if (attrString(n, 'mode', 'constant') !== 'constant') throw new NmlabError('UNSUPPORTED', `ONNX node "${n.name ?? y0(c)}" (Pad): only constant padding can be differentiated`);
  const xs = w.shape(x0(c));
  const pads = attrInts(n, 'pads') ?? (c.consts.get(n.inputs[1])?.values as number[]);
  const starts = xs.map((_, i) => pads[i]);
  const ends = xs.map((d, i) => pads[i] + d);
  return [w.op('Slice', [dy0(c), w.ints(starts), w.ints(ends), w.ints(xs.map((_, i) => i))], xs)];
};

/** Gradient rule per operator, and the input slots that can carry a gradient. */
export const RULES: Record<string, { rule: Rule; slots: number[] }> = {
  Conv: { rule: conv, slots: [0, 1, 2] },
  BatchNormalization: { rule: batchNorm, slots: [0, 1, 2] },
  LayerNormalization: { rule: layerNorm, slots: [0, 1, 2] },
  MaxPool: { rule: maxPool, slots: [0] },
  AveragePool: { rule: averagePool, slots: [0] },
  GlobalAveragePool: { rule: globalAveragePool, slots: [0] },
  Gemm: { rule: gemm, slots: [0, 1, 2] },
  MatMul: { rule: matMul, slots: [0, 1] },
  Add: { rule: add, slots: [0, 1] },
  Sub: { rule: sub, slots: [0, 1] },
  Mul: { rule: mul, slots: [0, 1] },
  Div: { rule: div, slots: [0, 1] },
  Pow: { rule: pow, slots: [0, 1] },
  Relu: { rule: relu, slots: [0] },
  LeakyRelu: { rule: leakyRelu, slots: [0] },
  Clip: { rule: clip, slots: [0] },
  HardSigmoid: { rule: hardSigmoid, slots: [0] },
  HardSwish: { rule: hardSwish, slots: [0] },
  Sigmoid: { rule: sigmoid, slots: [0] },
  Tanh: { rule: tanh, slots: [0] },
  Exp: { rule: exp, slots: [0] },
  Log: { rule: log, slots: [0] },
  Neg: { rule: neg, slots: [0] },
  Reciprocal: { rule: reciprocal, slots: [0] },
  Sqrt: { rule: sqrt, slots: [0] },
  Erf: { rule: erf, slots: [0] },
  Gelu: { rule: gelu, slots: [0] },
  Softmax: { rule: softmax, slots: [0] },
  LogSoftmax: { rule: logSoftmax, slots: [0] },
  Flatten: { rule: reshapeLike, slots: [0] },
  Reshape: { rule: reshapeLike, slots: [0] },
  Squeeze: { rule: reshapeLike, slots: [0] },
  Unsqueeze: { rule: reshapeLike, slots: [0] },
  Identity: { rule: reshapeLike, slots: [0] },
  Cast: { rule: cast, slots: [0] },
  Dropout: { rule: reshapeLike, slots: [0] },
  Transpose: { rule: transpose, slots: [0] },
  Concat: { rule: concat, slots: Array.from({ length: 64 }, (_, i) => i) },
  Split: { rule: split, slots: [0] },
  Slice: { rule: slice, slots: [0] },
  Gather: { rule: gather, slots: [0] },
  ReduceMean: { rule: reduceMeanOrSum, slots: [0] },
  ReduceSum: { rule: reduceMeanOrSum, slots: [0] },
  Expand: { rule: expand, slots: [0] },
  Where: { rule: where, slots: [1, 2] },
  Pad: { rule: pad, slots: [0] },
};

/** Operators through which no gradient flows (integer or boolean results, constants). */
export const NO_GRADIENT = new Set(['Shape', 'Constant', 'ConstantOfShape', 'ArgMax', 'ArgMin', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Floor', 'Ceil', 'Sign', 'Range']);
