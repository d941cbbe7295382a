/**
 * Runs one MLP / NMTune training step on onnxruntime-node with the graphs of ortGraphs.ts:
 * forward, the SVD projector in JS (losses.ts, float64), then loss terms and gradients.
 * Parameters live in plain Float32Arrays owned by the caller; nothing is copied into ORT
 * (its tensors wrap the arrays).
 */
import { loadOrt, ortThreads, sessionOptions } from '../onnx/providers';
import { BN_EPS } from './mlp';
import { backwardModel, forwardModel, GRAD_OUTPUT_DIMS, type GradOutput, type MlpDim } from './ortGraphs';
import { svdTermParts } from './losses';
import type { TunePreset, TuneTerms } from '../../shared/contract/tuning';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;
type OrtTensor = import('onnxruntime-node').Tensor;

/** Parameter names, as the tfjs Mlp and head call them (plus `residual.scale` with a residual). */
export const MLP_PARAM_NAMES = ['block0.weight', 'block0.bias', 'block0.bn.gamma', 'block0.bn.beta', 'out.weight', 'out.bias', 'head.weight', 'head.bias'] as const;
export type MlpParamName = (typeof MLP_PARAM_NAMES)[number] | 'residual.scale';
/** The parameters; `residual.scale` is present exactly when the step has a residual. */
export type MlpArrays = Record<(typeof MLP_PARAM_NAMES)[number], Float32Array> & { 'residual.scale'?: Float32Array };

/** The parameter names of a step with or without the residual scale. */
export function mlpParamNames(residual: boolean): MlpParamName[] {
  return residual ? [...MLP_PARAM_NAMES, 'residual.scale'] : [...MLP_PARAM_NAMES];
}

const GRAD_OF: Record<MlpParamName, GradOutput> = {
  'residual.scale': 'dscale',
  'block0.weight': 'dw1',
  'block0.bias': 'db1',
  'block0.bn.gamma': 'dgamma',
  'block0.bn.beta': 'dbeta',
  'out.weight': 'dw2',
  'out.bias': 'db2',
  'head.weight': 'dwh',
  'head.bias': 'dbh',
};

export interface OrtStepResult {
  ce: number;
  mse?: number;
  cov?: number;
  svd?: number;
  total: number;
  grads: MlpArrays;
  /** Batch mean and biased variance of the hidden pre-activations (for running stats). */
  mean: Float32Array;
  variance: Float32Array;
}

export class OrtMlpStep {
  private constructor(
    private readonly ort: Ort,
    private readonly fwd: Session,
    private readonly bwd: Session,
    readonly nmtune: boolean,
    readonly residual: boolean,
    private readonly opts: import('onnxruntime-node').InferenceSession.SessionOptions,
  ) {}

  /** The backward graph with Z·P for batches wider than D (built on first need). */
  private bwdCols: Promise<Session> | null = null;

  /** Load ORT and build both sessions; rejects where onnxruntime-node cannot load. */
  static async create(nmtune: boolean, threads = ortThreads(), residual = false): Promise<OrtMlpStep> {
    const ort = await loadOrt();
    // No spinning: between the two graphs of a step JS runs, and idle pool threads that spin
    // steal the core that JS (and other processes) need.
    const opts = await sessionOptions({
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const [fwd, bwd] = await Promise.all([ort.InferenceSession.create(forwardModel(BN_EPS, residual), opts), ort.InferenceSession.create(backwardModel(nmtune, 'rows', residual), opts)]);
    return new OrtMlpStep(ort, fwd, bwd, nmtune, residual, opts);
  }

  private t(data: Float32Array, dims: number[]): OrtTensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  private s(v: number): OrtTensor {
    return new this.ort.Tensor('float32', Float32Array.of(v), []);
  }

  /**
   * Loss terms and gradients for a batch of `rows` rows of `x` with `onehot` (rows×C) labels.
   * `paper`: L_MSE between x and Z (eq. 4). `reference`: x holds the weak view's rows then the
   * strong view's (rows = 2B), and L_MSE is `nn.MSELoss()` between the strong half of Z and
   * the weak half of x (objective.ts); CE, COV and SVD use all rows either way.
   */
  async run(p: MlpArrays, x: Float32Array, onehot: Float32Array, rows: number, terms: TuneTerms | null, preset: TunePreset = 'paper', gradsInto?: Partial<MlpArrays>): Promise<OrtStepResult> {
    const d = p['out.bias'].length;
    const hid = p['block0.bias'].length;
    const c = p['head.bias'].length;
    const scale = p['residual.scale'];
    if (this.residual !== (scale !== undefined)) throw new Error(`OrtMlpStep: the step was built ${this.residual ? 'with' : 'without'} a residual scale, the parameters ${scale ? 'have' : 'lack'} one`);
    const xt = this.t(x, [rows, d]);
    const f = await this.fwd.run({
      x: xt,
      w1: this.t(p['block0.weight'], [d, hid]),
      b1: this.t(p['block0.bias'], [hid]),
      gamma: this.t(p['block0.bn.gamma'], [hid]),
      beta: this.t(p['block0.bn.beta'], [hid]),
      w2: this.t(p['out.weight'], [hid, d]),
      b2: this.t(p['out.bias'], [d]),
      ...(scale ? { scale: this.t(scale, [d]) } : {}),
    });
    const feeds: Record<string, OrtTensor> = {
      x: xt,
      z: f.z,
      ah: f.ah,
      h: f.h,
      rstd: f.rstd,
      onehot: this.t(onehot, [rows, c]),
      gamma: this.t(p['block0.bn.gamma'], [hid]),
      w2: this.t(p['out.weight'], [hid, d]),
      wh: this.t(p['head.weight'], [d, c]),
      bh: this.t(p['head.bias'], [c]),
      invM: this.s(1 / rows),
      ...(scale ? { y: f.y, scale: this.t(scale, [d]) } : {}),
    };
    let svd = 0;
    if (this.nmtune) {
      if (!terms) throw new Error('OrtMlpStep: NMTune step without term weights');
      const z = f.z.data as Float32Array;
      const parts = svdTermParts(z, rows, d, terms.svdTopK);
      svd = parts.value;
      const n = parts.viaRows ? rows : d;
      const m1 = Math.max(1, rows - 1);
      // L_MSE's target, row weights ρ and scale k (ortGraphs.ts).
      let target = x;
      const rowW = new Float32Array(rows).fill(1);
      let k = 1 / rows;
      if (preset === 'reference') {
        const half = rows / 2;
        target = new Float32Array(rows * d);
        target.set(x.subarray(0, half * d), 0);
        target.set(x.subarray(0, half * d), half * d);
        rowW.fill(0, 0, half);
        k = 1 / (half * d);
      }
      Object.assign(feeds, {
        target: this.t(target, [rows, d]),
        rowW: this.t(rowW, [rows, 1]),
        p: this.t(Float32Array.from(parts.p), [n, n]),
        wMse: this.s(terms.mse),
        wCov: this.s(terms.cov),
        wSvd: this.s(terms.svd),
        covAll: this.s(1 / (m1 * m1 * d)),
        covGrad: this.s(4 / (m1 * m1 * d)),
        mseScale: this.s(k),
        mseGrad: this.s(-2 * k),
      });
    }
    let bwd = this.bwd;
    if (this.nmtune && rows > d) {
      this.bwdCols ??= this.ort.InferenceSession.create(backwardModel(true, 'cols', this.residual), this.opts);
      bwd = await this.bwdCols;
    }
    // Gradients land where the caller asks (the optimiser's own memory): ORT writes them there
    // instead of into fresh buffers the optimiser would copy again (8 MB per MLP step).
    const fetches: Record<string, OrtTensor | null> = Object.fromEntries(bwd.outputNames.map((n) => [n, null]));
    for (const name of mlpParamNames(this.residual)) {
      const into = gradsInto?.[name];
      if (!into) continue;
      if (into.length !== p[name]!.length) throw new Error(`OrtMlpStep: the buffer for the gradient of "${name}" holds ${into.length} values, the parameter ${p[name]!.length}`);
      fetches[GRAD_OF[name]] = this.t(into, this.gradShape(name, d, hid, c));
    }
    const b = await bwd.run(feeds, fetches);
    const grads = {} as MlpArrays;
    for (const name of mlpParamNames(this.residual)) grads[name] = gradsInto?.[name] ?? (b[GRAD_OF[name]].data as Float32Array);
    const ce = (b.ce.data as Float32Array)[0];
    const out: OrtStepResult = { ce, total: ce, grads, mean: f.mu.data as Float32Array, variance: f.var.data as Float32Array };
    if (this.nmtune && terms) {
      out.mse = (b.mse.data as Float32Array)[0];
      out.cov = (b.cov.data as Float32Array)[0];
      out.svd = svd;
      out.total = ce + terms.mse * out.mse + terms.cov * out.cov + terms.svd * svd;
    }
    return out;
  }

  /** The shape of a parameter's gradient output, as backwardModel declares it. */
  private gradShape(name: MlpParamName, d: number, hid: number, c: number): number[] {
    const size: Record<MlpDim, number> = { d, hid, c };
    return GRAD_OUTPUT_DIMS[GRAD_OF[name]].map((dim) => size[dim]);
  }

  async dispose(): Promise<void> {
    await Promise.all([this.fwd.release(), this.bwd.release(), this.bwdCols?.then((s) => s.release())]);
  }
}
