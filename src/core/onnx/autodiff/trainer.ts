/**
 * Runs a training graph (./index.ts) on onnxruntime-node: one `session.run` per step does
 * forward, backward and the optimiser update. The state (parameters, optimiser moments,
 * BatchNorm running statistics) stays in ORT tensors: each step's `<name>.next` outputs are
 * fed as the next step's inputs as they are, with no copy through JS arrays.
 */
import { cpus, loadavg } from 'node:os';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { loadOrt, ortThreads, sessionOptions } from '../providers';
import { encodeModel } from '../builder';
import type { TrainingGraph } from './index';
import { nchwcBlockSize, nchwcTrainingModel } from './nchwc';

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
 * Whether the machine is already busier than its cores (1-minute load average). ORT's intra-op
 * workers spin between the graph's ~850 small ops; with no core to spare that spinning only
 * takes CPU from the step itself and from other processes. Measured, the CNN's step with 2
 * threads at load 12–16 on 2 cores: 190–210 → 96–111 CPU-ms and 284–365 → 183 ms wall
 * (median) without spinning. On a quiet machine spinning stays on (it shortens the hand-offs).
 */
function oversubscribed(): boolean {
  return loadavg()[0] > cpus().length;
}

/** Whether a session on these providers runs every node on the CPU provider. */
function cpuOnly(providers: InferenceSession.SessionOptions['executionProviders']): boolean {
  return (providers ?? ['cpu']).every((p) => (typeof p === 'string' ? p : p.name) === 'cpu');
}

/**
 * The session for a training graph: on the CPU provider with its convolutions on the NCHWc
 * kernels (./nchwc.ts) unless NMLAB_NCHWC=0, where ORT has them; the graph as built otherwise.
 */
async function trainingSession(ort: Ort, graph: TrainingGraph, so: InferenceSession.SessionOptions): Promise<{ session: InferenceSession; layout: 'nchwc' | 'nchw' }> {
  if (cpuOnly(so.executionProviders) && process.env.NMLAB_NCHWC !== '0') {
    const block = await nchwcBlockSize(ort);
    const model = block ? nchwcTrainingModel(graph, block) : null;
    if (model) {
      try {
        return { session: await ort.InferenceSession.create(encodeModel(model), so), layout: 'nchwc' };
      } catch {
        // An ORT build without the NCHWc kernels: the plain graph computes the same.
      }
    }
  }
  return { session: await ort.InferenceSession.create(graph.bytes, so), layout: 'nchw' };
}

export class OnnxTrainer {
  private state = new Map<string, Tensor>();
  private t = 0;

  private constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession,
    readonly graph: TrainingGraph,
    initial: Record<string, Float32Array>,
    /** Whether the convolutions run on ORT's NCHWc kernels ('nchwc') or as built ('nchw'). */
    readonly layout: 'nchwc' | 'nchw',
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
    if (threads > 1 && oversubscribed()) base.extra = { session: { intra_op: { allow_spinning: '0' } } };
    const so = opts.executionProviders ? { ...base, executionProviders: opts.executionProviders } : await sessionOptions(base);
    const { session, layout } = await trainingSession(ort, graph, so);
    return new OnnxTrainer(ort, session, graph, { ...graph.initial, ...opts.initial }, layout);
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
    await this.session.release();
  }
}
