/**
 * Runs a training graph (./index.ts) on onnxruntime-node: one `session.run` per step does
 * forward, backward and the optimiser update. The state (parameters, optimiser moments,
 * BatchNorm running statistics) stays in ORT tensors: each step's `<name>.next` outputs are
 * fed as the next step's inputs as they are, with no copy through JS arrays.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { loadOrt, ortThreads, sessionOptions } from '../providers';
import { encodeModel } from '../builder';
import type { TrainingGraph } from './index';
import { nchwcBlockSize, nchwcTrainingModel } from './nchwc';
import { cpuSnapshot, othersCores, othersCoresNow, oversubscribed, type CpuSnapshot } from '../cpuLoad';

type Ort = typeof import('onnxruntime-node');

export interface TrainerOptions {
  /** Intra-op threads; every core by default (NMLAB_ORT_THREADS overrides). */
  threads?: number;
  /** Execution providers; default the process-wide choice of src/core/onnx/providers.ts. */
  executionProviders?: InferenceSession.SessionOptions['executionProviders'];
  /** Initial state values by state input name, over the graph's own initial values. */
  initial?: Record<string, Float32Array>;
}

export interface StepResult {
  loss: number;
  /** Rows of the batch whose arg-max logit is the label. */
  correct: number;
  /** The graph's extra outputs and gradients, by value name. */
  values: Record<string, Tensor>;
}

/**
 * Whether ORT's intra-op workers may spin. They spin between the graph's ~850 small ops; with
 * no core to spare that spinning only takes CPU from the step itself and from other processes.
 * Measured, the CNN's step with 2 threads on 2 cores (batch 128, medians, one process each,
 * 2 December): beside one other busy process 140–146 ms wall and 189 CPU-ms spinning, 93–101 ms
 * and 114–115 CPU-ms not; at load 12–16, 284–365 → 183 ms. Quiet, spinning saves 5–9 % (71 vs
 * 76–77 ms): it shortens the hand-offs. Decided from other processes' CPU use now
 * (../cpuLoad.ts), at the start and again as the training runs, not from the load average,
 * which lags by a minute and counts the trainer's own threads.
 */
const spinOption = (spin: boolean): InferenceSession.SessionOptions['extra'] => ({ session: { intra_op: { allow_spinning: spin ? '1' : '0' } } });

/** Seconds between a trainer's looks at the CPU load; two looks in a row must agree to change. */
const SPIN_CHECK_SECONDS = 10;

/** Whether a session on these providers runs every node on the CPU provider. */
function cpuOnly(providers: InferenceSession.SessionOptions['executionProviders']): boolean {
  return (providers ?? ['cpu']).every((p) => (typeof p === 'string' ? p : p.name) === 'cpu');
}

/**
 * The session for a training graph: on the CPU provider with its convolutions on the NCHWc
 * kernels (./nchwc.ts) unless NMLAB_NCHWC=0, where ORT has them; the graph as built otherwise.
 */
async function trainingSession(ort: Ort, graph: TrainingGraph, so: InferenceSession.SessionOptions): Promise<{ session: InferenceSession; layout: 'nchwc' | 'nchw'; bytes: Uint8Array }> {
  if (cpuOnly(so.executionProviders) && process.env.NMLAB_NCHWC !== '0') {
    const block = await nchwcBlockSize(ort);
    const model = block ? nchwcTrainingModel(graph, block) : null;
    if (model) {
      const bytes = encodeModel(model);
      try {
        return { session: await ort.InferenceSession.create(bytes, so), layout: 'nchwc', bytes };
      } catch {
        // An ORT build without the NCHWc kernels: the plain graph computes the same.
      }
    }
  }
  return { session: await ort.InferenceSession.create(graph.bytes, so), layout: 'nchw', bytes: graph.bytes };
}

export class OnnxTrainer {
  private state = new Map<string, Tensor>();
  private t = 0;
  /** The CPU reading of the last look at the load, and looks in a row that disagreed with `spinning`. */
  private looked: CpuSnapshot = cpuSnapshot();
  private disagreed = 0;
  /** A session replacement in flight (release() waits for it, so neither session is left open). */
  private swapping: Promise<void> | null = null;

  private constructor(
    private readonly ort: Ort,
    private session: InferenceSession,
    readonly graph: TrainingGraph,
    initial: Record<string, Float32Array>,
    /** Whether the convolutions run on ORT's NCHWc kernels ('nchwc') or as built ('nchw'). */
    readonly layout: 'nchwc' | 'nchw',
    /** The model the session runs and its options: a session of them replaces it when spinning changes. */
    private readonly bytes: Uint8Array,
    private readonly options: InferenceSession.SessionOptions,
    private readonly threads: number,
    /** Whether ORT's idle intra-op workers spin (see {@link spinOption}). */
    private spin: boolean,
  ) {
    for (const [name, data] of Object.entries(initial)) {
      const slot = [...graph.params, ...graph.params.flatMap((p) => p.state), ...graph.buffers].find((s) => s.input === name);
      if (slot) this.state.set(name, new ort.Tensor('float32', Float32Array.from(data), slot.shape));
    }
  }

  static async create(graph: TrainingGraph, opts: TrainerOptions = {}): Promise<OnnxTrainer> {
    const ort = await loadOrt();
    const threads = opts.threads ?? ortThreads();
    const base: InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 };
    const spin = threads === 1 || !oversubscribed(await othersCoresNow(), threads);
    const so = opts.executionProviders ? { ...base, executionProviders: opts.executionProviders } : await sessionOptions(base);
    const { session, layout, bytes } = await trainingSession(ort, graph, { ...so, extra: spinOption(spin) });
    return new OnnxTrainer(ort, session, graph, { ...graph.initial, ...opts.initial }, layout, bytes, so, threads, spin);
  }

  /** Whether ORT's idle intra-op workers spin now. */
  get spinning(): boolean {
    return this.spin;
  }

  /**
   * Re-decides spinning from other processes' CPU use (`others`, in cores) over the last
   * window: after two looks in a row that disagree with the session's setting, a session with
   * the other setting replaces it. The state lives in tensors outside the session, so the steps
   * go on from where they were.
   */
  async lookAtLoad(others: number): Promise<void> {
    if (this.threads === 1) return;
    const spin = !oversubscribed(others, this.threads);
    this.disagreed = spin === this.spin ? 0 : this.disagreed + 1;
    if (this.disagreed < 2 || this.swapping) return;
    this.swapping = (async () => {
      const next = await this.ort.InferenceSession.create(this.bytes, { ...this.options, extra: spinOption(spin) });
      const old = this.session;
      this.session = next;
      this.spin = spin;
      this.disagreed = 0;
      await old.release();
    })().finally(() => {
      this.swapping = null;
    });
    await this.swapping;
  }

  /** Steps taken (AdamW's bias-correction counter). */
  get steps(): number {
    return this.t;
  }

  /**
   * One step on `x` (the data input, graph.inputShape) and int labels; `lr` this step's rate;
   * `aux` the graph's auxiliary inputs (graph.aux, for an extra loss) by name.
   */
  async step(x: Float32Array, labels: ArrayLike<number>, lr: number, aux: Record<string, Float32Array> = {}): Promise<StepResult> {
    const g = this.graph;
    const { ort } = this;
    this.t++;
    const feeds: Record<string, Tensor> = {
      [g.input]: new ort.Tensor('float32', x, g.inputShape),
      [g.labels]: new ort.Tensor('int64', BigInt64Array.from(Array.from(labels, (v) => BigInt(v))), [g.batchSize]),
      [g.scalars.lr]: new ort.Tensor('float32', Float32Array.of(lr), []),
    };
    if (g.optimizer.kind === 'adamw' && g.scalars.stepSize && g.scalars.rsbc2) {
      feeds[g.scalars.stepSize] = new ort.Tensor('float32', Float32Array.of(lr / (1 - g.optimizer.beta1 ** this.t)), []);
      feeds[g.scalars.rsbc2] = new ort.Tensor('float32', Float32Array.of(1 / Math.sqrt(1 - g.optimizer.beta2 ** this.t)), []);
    }
    for (const a of g.aux) {
      const data = aux[a.name];
      if (!data) throw new Error(`OnnxTrainer: no value for the auxiliary input "${a.name}"`);
      feeds[a.name] = new ort.Tensor('float32', data, a.shape);
    }
    for (const [name, t] of this.state) feeds[name] = t;
    const out = await this.session.run(feeds);
    for (const p of g.params) {
      this.state.set(p.input, out[p.output]);
      for (const s of p.state) this.state.set(s.input, out[s.output]);
    }
    for (const b of g.buffers) this.state.set(b.input, out[b.output]);
    const now = cpuSnapshot();
    if (now.at - this.looked.at >= SPIN_CHECK_SECONDS * 1000) {
      await this.lookAtLoad(othersCores(this.looked, now));
      this.looked = now;
    }
    const values: Record<string, Tensor> = {};
    for (const v of [...Object.values(g.outputs.extra), ...Object.values(g.outputs.grads)]) values[v] = out[v];
    return { loss: (out[g.outputs.loss].data as Float32Array)[0], correct: (out[g.outputs.correct].data as Float32Array)[0], values };
  }

  /** The current value of a parameter or buffer by name, as the tensor the next step feeds (no copy). */
  current(name: string): Tensor | undefined {
    return this.state.get(name);
  }

  /** Current parameters and BatchNorm statistics by name (copies). */
  weights(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const s of [...this.graph.params, ...this.graph.buffers]) out[s.name] = Float32Array.from(this.state.get(s.input)?.data as Float32Array);
    return out;
  }

  async release(): Promise<void> {
    await this.swapping?.catch(() => undefined);
    await this.session.release();
  }
}
