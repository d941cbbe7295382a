/**
 * One training step of the black-box MLP (one hidden block, optionally the residual z = s ⊙ y + x)
 * as two ONNX graphs run by onnxruntime-node, whose CPU GEMM (MLAS) is several times faster
 * than tfjs-wasm's (bench/RESULTS.md). The backward pass is written out by hand:
 *
 *   forward   a = xW₁+b₁;  μ, σ² = batch mean, biased variance of a;  â = (a−μ)·r, r = (σ²+ε)^−½
 *             h = relu(γâ+β);  y = hW₂+b₂;  z = y, or z = s ⊙ y + x (residual);  logits = zWₕ+bₕ
 *   backward  dlogits = (softmax − onehot)/M;  dWₕ = zᵀdlogits;  dz = dlogits·Wₕᵀ (+ NMTune terms)
 *             dy = dz, or dy = s ⊙ dz and ds = Σ dz ⊙ y (residual)
 *             dW₂ = hᵀdy;  dh = dy·W₂ᵀ;  dĥ = dh·[h>0];  dγ = Σ dĥ·â;  dβ = Σ dĥ
 *             dâ = γ·dĥ;   da = r·(dâ − mean(dâ) − â·mean(dâ·â));  dW₁ = xᵀda
 *
 * NMTune's terms on Z (paper eq. 4–6), with weights w (src/core/tuning/params.ts presets):
 *   L_MSE  e = t̂ − ẑ (rows normalised; t the detached target), per-row weights ρ and a scale k:
 *          L = k Σᵢ ρᵢ‖eᵢ‖²;  ∂/∂zᵢ = −2kρᵢ(eᵢ − ẑᵢ(ẑᵢ·eᵢ))/‖zᵢ‖. The paper preset has ρ = 1,
 *          k = 1/M (eq. 4); the reference preset ρ = 0 on the weak half and 1 on the strong half,
 *          t = the weak rows, k = 1/(B·D) (`nn.MSELoss()` of the strong view against the weak).
 *   L_COV  G = ZcZcᵀ, s = column sums of Zc²;  L = (‖G‖² − ‖s‖²)/((M−1)²D);
 *          ∂/∂Z = 4(G·Zc − Zc·diag(s))/((M−1)²D)   (both products have zero column means)
 *   L_SVD  value and the projector P from the float64 eigen-decomposition in JS (losses.ts);
 *          ∂/∂Z = P·Z (M ≤ D) or Z·P (M > D), computed here.
 * Graph F runs the forward pass; JS then forms P from Z; graph B does the rest. The two
 * graphs are checked against PyTorch's autograd (test/unit/nmtune.test.ts fixtures).
 */
import { attr, encodeModel, valueInfo, type NodeSpec, type TensorSpec } from '../onnx/builder';

const F = 'float32' as const;

class Nodes {
  readonly list: NodeSpec[] = [];
  private n = 0;
  op(opType: string, inputs: string[], attributes?: NodeSpec['attributes'], out?: string): string {
    const name = out ?? `t${this.n++}`;
    this.list.push({ opType, inputs, outputs: [name], ...(attributes ? { attributes } : {}) });
    return name;
  }
}

const axes = (name: string, v: number[]): TensorSpec => ({ name, dataType: 'int64', dims: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
const scalar = (name: string, v: number): TensorSpec => ({ name, dataType: 'float32', dims: [], data: Float32Array.of(v) });

/** Forward graph (training mode: batch statistics); `residual` adds z = s ⊙ y + x. */
export function forwardModel(bnEps: number, residual = false): Uint8Array {
  const g = new Nodes();
  const a = g.op('Gemm', ['x', 'w1', 'b1']);
  const mu = g.op('ReduceMean', [a], { axes: attr.ints([0]), keepdims: attr.int(1) }, 'mu');
  const ac = g.op('Sub', [a, mu]);
  const variance = g.op('ReduceMean', [g.op('Mul', [ac, ac])], { axes: attr.ints([0]), keepdims: attr.int(1) }, 'var');
  const rstd = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, 'eps'])])], undefined, 'rstd');
  const ah = g.op('Mul', [ac, rstd], undefined, 'ah');
  const h = g.op('Relu', [g.op('Add', [g.op('Mul', [ah, 'gamma']), 'beta'])], undefined, 'h');
  if (residual) {
    const y = g.op('Gemm', [h, 'w2', 'b2'], undefined, 'y');
    g.op('Add', [g.op('Mul', [y, 'scale']), 'x'], undefined, 'z');
  } else g.op('Gemm', [h, 'w2', 'b2'], undefined, 'z');
  return encodeModel({
    docString: 'NMLab MLP tuner: forward pass of Linear-BatchNorm-ReLU-Linear (training mode)',
    graph: {
      name: 'mlp_forward',
      inputs: [
        valueInfo('x', F, ['m', 'd']),
        valueInfo('w1', F, ['d', 'hid']),
        valueInfo('b1', F, ['hid']),
        valueInfo('gamma', F, ['hid']),
        valueInfo('beta', F, ['hid']),
        valueInfo('w2', F, ['hid', 'd']),
        valueInfo('b2', F, ['d']),
        ...(residual ? [valueInfo('scale', F, ['d'])] : []),
      ],
      outputs: [
        valueInfo('z', F, ['m', 'd']),
        ...(residual ? [valueInfo('y', F, ['m', 'd'])] : []),
        valueInfo('ah', F, ['m', 'hid']),
        valueInfo('h', F, ['m', 'hid']),
        valueInfo('rstd', F, [1, 'hid']),
        valueInfo('mu', F, [1, 'hid']),
        valueInfo('var', F, [1, 'hid']),
      ],
      initializers: [scalar('eps', bnEps)],
      nodes: g.list,
    },
  });
}

/** The backward graph's dimensions: features D, hidden width and classes C. */
export type MlpDim = 'd' | 'hid' | 'c';

/**
 * The gradient outputs of {@link backwardModel} and their shapes in its symbolic dimensions
 * (`dscale` only with the residual).
 */
export const GRAD_OUTPUT_DIMS = {
  dscale: ['d'],
  dw1: ['d', 'hid'],
  db1: ['hid'],
  dgamma: ['hid'],
  dbeta: ['hid'],
  dw2: ['hid', 'd'],
  db2: ['d'],
  dwh: ['d', 'c'],
  dbh: ['c'],
} as const satisfies Record<string, readonly MlpDim[]>;
export type GradOutput = keyof typeof GRAD_OUTPUT_DIMS;

const gradOutput = (name: GradOutput) => valueInfo(name, F, GRAD_OUTPUT_DIMS[name]);

/**
 * Backward graph. Scalars fed per step (the batch size M varies at an epoch's end):
 * `invM` = 1/M; with NMTune also `wMse`, `wCov`, `wSvd`, `covAll` = 1/((M−1)²D),
 * `covGrad` = 4/((M−1)²D), `mseScale` = k and `mseGrad` = −2k, and the M×1 row weights `rowW`.
 */
export function backwardModel(nmtune: boolean, svdSide: 'rows' | 'cols' = 'rows', residual = false): Uint8Array {
  const g = new Nodes();
  const T = (x: string) => g.op('Transpose', [x], { perm: attr.ints([1, 0]) });
  const sum0 = (x: string) => g.op('ReduceSum', [x, 'ax0'], { keepdims: attr.int(0) });
  const sumAll = (x: string) => g.op('ReduceSum', [x], { keepdims: attr.int(0) });
  const rowNorm = (x: string) => g.op('Max', [g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [x, x]), 'ax1'], { keepdims: attr.int(1) })]), 'tiny']);

  const logits = g.op('Gemm', ['z', 'wh', 'bh']);
  const lsm = g.op('LogSoftmax', [logits], { axis: attr.int(1) });
  g.op('Mul', [g.op('Neg', [sumAll(g.op('Mul', ['onehot', lsm]))]), 'invM'], undefined, 'ce');
  const dlogits = g.op('Mul', [g.op('Sub', [g.op('Exp', [lsm]), 'onehot']), 'invM']);
  g.op('MatMul', [T('z'), dlogits], undefined, 'dwh');
  g.op('ReduceSum', [dlogits, 'ax0'], { keepdims: attr.int(0) }, 'dbh');
  let dz = g.op('Gemm', [dlogits, 'wh'], { transB: attr.int(1) });
  const extraInputs = [];
  const extraOutputs = [];
  if (nmtune) {
    // L_MSE (eq. 4; row-weighted, see the module comment)
    const fn = g.op('Div', ['target', rowNorm('target')]);
    const zNorm = rowNorm('z');
    const zn = g.op('Div', ['z', zNorm]);
    const e = g.op('Sub', [fn, zn]);
    const rowSq = g.op('ReduceSum', [g.op('Mul', [e, e]), 'ax1'], { keepdims: attr.int(1) });
    g.op('Mul', [sumAll(g.op('Mul', [rowSq, 'rowW'])), 'mseScale'], undefined, 'mse');
    const dot = g.op('ReduceSum', [g.op('Mul', [zn, e]), 'ax1'], { keepdims: attr.int(1) });
    const dMse = g.op('Mul', [g.op('Mul', [g.op('Div', [g.op('Sub', [e, g.op('Mul', [zn, dot])]), zNorm]), 'rowW']), 'mseGrad']);
    // L_COV (eq. 5) through the M×M Gram matrix of the centred batch
    const zc = g.op('Sub', ['z', g.op('ReduceMean', ['z'], { axes: attr.ints([0]), keepdims: attr.int(1) })]);
    const gram = g.op('Gemm', [zc, zc], { transB: attr.int(1) });
    const s = g.op('ReduceSum', [g.op('Mul', [zc, zc]), 'ax0'], { keepdims: attr.int(1) });
    g.op('Mul', [g.op('Sub', [sumAll(g.op('Mul', [gram, gram])), sumAll(g.op('Mul', [s, s]))]), 'covAll'], undefined, 'cov');
    const dCov = g.op('Mul', [g.op('Sub', [g.op('MatMul', [gram, zc]), g.op('Mul', [zc, s])]), 'covGrad']);
    // L_SVD (eq. 6): gradient P·Z (P is M×M, batch ≤ D) or Z·P (P is D×D), P from JS
    const dSvd = g.op('MatMul', svdSide === 'rows' ? ['p', 'z'] : ['z', 'p']);
    dz = g.op('Sum', [dz, g.op('Mul', [dMse, 'wMse']), g.op('Mul', [dCov, 'wCov']), g.op('Mul', [dSvd, 'wSvd'])]);
    extraInputs.push(
      valueInfo('target', F, ['m', 'd']),
      valueInfo('rowW', F, ['m', 1]),
      valueInfo('p', F, svdSide === 'rows' ? ['m', 'm'] : ['d', 'd']),
      ...['wMse', 'wCov', 'wSvd', 'covAll', 'covGrad', 'mseScale', 'mseGrad'].map((n) => valueInfo(n, F, [])),
    );
    extraOutputs.push(valueInfo('mse', F, []), valueInfo('cov', F, []));
  }
  let dy = dz;
  if (residual) {
    g.op('ReduceSum', [g.op('Mul', [dz, 'y']), 'ax0'], { keepdims: attr.int(0) }, 'dscale');
    dy = g.op('Mul', [dz, 'scale']);
    extraInputs.push(valueInfo('y', F, ['m', 'd']), valueInfo('scale', F, ['d']));
    extraOutputs.push(gradOutput('dscale'));
  }
  g.op('MatMul', [T('h'), dy], undefined, 'dw2');
  g.op('ReduceSum', [dy, 'ax0'], { keepdims: attr.int(0) }, 'db2');
  const dh = g.op('Gemm', [dy, 'w2'], { transB: attr.int(1) });
  const dbn = g.op('Mul', [dh, g.op('Cast', [g.op('Greater', ['h', 'zero'])], { to: attr.int(1) })]);
  g.op('ReduceSum', [g.op('Mul', [dbn, 'ah']), 'ax0'], { keepdims: attr.int(0) }, 'dgamma');
  g.op('ReduceSum', [dbn, 'ax0'], { keepdims: attr.int(0) }, 'dbeta');
  const dah = g.op('Mul', [dbn, 'gamma']);
  const mean0 = (x: string) => g.op('ReduceMean', [x], { axes: attr.ints([0]), keepdims: attr.int(1) });
  const da = g.op('Mul', [g.op('Sub', [g.op('Sub', [dah, mean0(dah)]), g.op('Mul', ['ah', mean0(g.op('Mul', [dah, 'ah']))])]), 'rstd']);
  g.op('MatMul', [T('x'), da], undefined, 'dw1');
  g.op('Identity', [sum0(da)], undefined, 'db1');
  return encodeModel({
    docString: `NMLab MLP tuner: loss and hand-written backward pass${nmtune ? ' with NMTune terms (paper eq. 4-7)' : ''}${residual ? ', residual z = s*y + x' : ''}`,
    graph: {
      name: nmtune ? 'nmtune_backward' : 'mlp_backward',
      inputs: [
        valueInfo('x', F, ['m', 'd']),
        valueInfo('z', F, ['m', 'd']),
        valueInfo('ah', F, ['m', 'hid']),
        valueInfo('h', F, ['m', 'hid']),
        valueInfo('rstd', F, [1, 'hid']),
        valueInfo('onehot', F, ['m', 'c']),
        valueInfo('gamma', F, ['hid']),
        valueInfo('w2', F, ['hid', 'd']),
        valueInfo('wh', F, ['d', 'c']),
        valueInfo('bh', F, ['c']),
        valueInfo('invM', F, []),
        ...extraInputs,
      ],
      outputs: [
        valueInfo('ce', F, []),
        ...extraOutputs,
        ...(['dw1', 'db1', 'dgamma', 'dbeta', 'dw2', 'db2', 'dwh', 'dbh'] as const).map(gradOutput),
      ],
      initializers: [axes('ax0', [0]), scalar('zero', 0), ...(nmtune ? [axes('ax1', [1]), scalar('tiny', 1e-12)] : [])],
      nodes: g.list,
    },
  });
}
