import { z } from 'zod';
import { NmlabError } from '../errors';

/**
 * Experiments (DESIGN §1.2–1.3, §6): a study described as a spec — backbones × tasks ×
 * methods × data fractions × seeds — expanded into one tuning job per combination, run by a
 * durable queue, and compared. The spec is what users edit (as YAML/JSON or in the builder);
 * everything else here is derived from it and stored in `experiments/<id>/` in the project.
 */
export const EXPERIMENT_SCHEMA_VERSION = 1;

export const ExperimentId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,79}$/, 'an experiment id is lower-case letters, digits, - and _ (max 80)');

/** Ids used inside a spec (backbones, tasks, method labels): they become parts of job keys and file names. */
const Slug = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'use letters, digits, ".", "-" and "_" (max 64)');

/**
 * A relative path inside the project, optionally a template: `{backbone}`, `{task}` and
 * `{gamma}` (the backbone's noise ratio in percent) are replaced per job, so one entry serves
 * every backbone of a study (e.g. `features/{backbone}/train.npy`).
 */
const ProjectPath = z.string().min(1).max(1024);

/** An M×D features `.npy` and its M labels `.npy`, both inside the project. */
export const FeatureSource = z.object({ features: ProjectPath, labels: ProjectPath });
export type FeatureSource = z.infer<typeof FeatureSource>;

/** An in-domain task: train on `train`, evaluate on `test` (accuracy, macro-F1, SVE of Z). */
export const IdTask = z.object({
  type: z.literal('id'),
  id: Slug,
  name: z.string().max(200).optional(),
  train: FeatureSource,
  test: FeatureSource,
});

/**
 * An out-of-domain task (paper §4, the train-on-one-domain protocol): train on the source
 * domain, evaluate on every target domain (accuracy, LSVR of Z); `test` is the source
 * domain's own held-out split, when there is one.
 */
export const OodTask = z.object({
  type: z.literal('ood'),
  id: Slug,
  name: z.string().max(200).optional(),
  train: FeatureSource,
  test: FeatureSource.optional(),
  targets: z.array(FeatureSource.extend({ name: Slug })).min(1),
});

export const TaskSpec = z.discriminatedUnion('type', [IdTask, OodTask]);
export type TaskSpec = z.infer<typeof TaskSpec>;

/** A pre-trained backbone; `gamma` is the label-noise ratio of its pre-training data, when known. */
export const BackboneSpec = z.object({
  id: Slug,
  name: z.string().max(200).optional(),
  gamma: z.number().min(0).max(1).optional(),
});
export type BackboneSpec = z.infer<typeof BackboneSpec>;

/** Hyper-parameters a spec may override (DESIGN §4 defaults otherwise). */
export const TuneOverrides = z
  .object({
    epochs: z.number().int().min(1).max(10000),
    lr: z.number().positive(),
    weightDecay: z.number().min(0),
    batchSize: z.number().int().min(2).max(65536),
    schedule: z.enum(['cosine', 'linear', 'constant']),
    warmupEpochs: z.number().min(0),
    mlpRatio: z.number().positive(),
    hiddenBlocks: z.number().int().min(1).max(16),
    residual: z.boolean(),
    terms: z.object({ mse: z.number().min(0), cov: z.number().min(0), svd: z.number().min(0), svdTopK: z.number().int().min(1) }),
  })
  .partial()
  .strict();
export type TuneOverrides = z.infer<typeof TuneOverrides>;

export const TuneMethodName = z.enum(['lp', 'mlp', 'nmtune']);
export type TuneMethodName = z.infer<typeof TuneMethodName>;

/** One method column of a study; `label` names it in tables (default: method, plus preset for NMTune). */
export const TuneMethodSpec = z.object({
  method: TuneMethodName,
  label: Slug.optional(),
  preset: z.enum(['paper', 'reference']).default('paper'),
  params: TuneOverrides.default({}),
});
export type TuneMethodSpec = z.infer<typeof TuneMethodSpec>;
export type TuneMethodSpecInput = z.input<typeof TuneMethodSpec>;

export const ExperimentPresetName = z.enum(['custom', 'noise-study', 'method-comparison']);
export type ExperimentPresetName = z.infer<typeof ExperimentPresetName>;

/** The study, as users write it. */
export const ExperimentSpec = z
  .object({
    schemaVersion: z.literal(EXPERIMENT_SCHEMA_VERSION).default(EXPERIMENT_SCHEMA_VERSION),
    name: z.string().min(1).max(200),
    /** Which layout the compare view leads with; the spec is otherwise free. */
    preset: ExperimentPresetName.default('custom'),
    backbones: z.array(BackboneSpec).min(1),
    tasks: z.array(TaskSpec).min(1),
    methods: z.array(TuneMethodSpec).min(1),
    /** Stratified fractions of each training set, (0, 1]. */
    fractions: z.array(z.number().gt(0).max(1)).min(1).default([1]),
    seeds: z.array(z.number().int().min(0).max(2 ** 31 - 1)).min(1).default([0]),
    /** Overrides applied to every method before the method's own. */
    defaults: TuneOverrides.default({}),
    /** Base priority of the experiment's jobs (higher runs first). */
    priority: z.number().int().min(-1000).max(1000).default(0),
  })
  .strict();
export type ExperimentSpec = z.infer<typeof ExperimentSpec>;
export type ExperimentSpecInput = z.input<typeof ExperimentSpec>;

/** One job of an expanded experiment: a single tuning run. Its `key` is stable across restarts. */
export const ExperimentJob = z.object({
  key: z.string(),
  index: z.number().int().min(0),
  backbone: z.string(),
  gamma: z.number().nullable(),
  task: z.string(),
  taskType: z.enum(['id', 'ood']),
  /** The method's label (column name). */
  method: z.string(),
  baseMethod: TuneMethodName,
  preset: z.enum(['paper', 'reference']),
  fraction: z.number(),
  seed: z.number().int(),
  /** Resolved overrides (spec defaults, then the method's). */
  params: TuneOverrides,
  /** Feature files with templates filled in. */
  train: FeatureSource,
  test: FeatureSource.nullable(),
  targets: z.array(FeatureSource.extend({ name: z.string() })),
});
export type ExperimentJob = z.infer<typeof ExperimentJob>;

export const QueueJobState = z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export type QueueJobState = z.infer<typeof QueueJobState>;

/** The queue's record of a job: persisted in `queue.json` on every change. */
export const QueueEntry = z.object({
  key: z.string(),
  state: QueueJobState,
  priority: z.number().int(),
  attempts: z.number().int().min(0),
  /** The run of the latest attempt, and every earlier one (interrupted runs stay on disk). */
  runId: z.string().nullable(),
  runIds: z.array(z.string()),
  error: z.string().nullable(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
});
export type QueueEntry = z.infer<typeof QueueEntry>;

/** `experiments/<id>/experiment.json`: the spec and its expansion, written once. */
export const ExperimentFile = z.object({
  schemaVersion: z.number().int().min(1),
  id: ExperimentId,
  createdAt: z.string(),
  spec: ExperimentSpec,
  jobs: z.array(ExperimentJob),
});
export type ExperimentFile = z.infer<typeof ExperimentFile>;

/** `experiments/<id>/queue.json`: the state of every job. */
export const QueueFile = z.object({
  schemaVersion: z.number().int().min(1),
  updatedAt: z.string(),
  entries: z.array(QueueEntry),
});
export type QueueFile = z.infer<typeof QueueFile>;

/** Live progress of a running job (not persisted). */
export const LiveProgress = z.object({
  done: z.number(),
  total: z.number(),
  etaSeconds: z.number().nullable(),
  message: z.string().optional(),
});
export type LiveProgress = z.infer<typeof LiveProgress>;

export const QueueCounts = z.record(QueueJobState, z.number().int().min(0));
export type QueueCounts = z.infer<typeof QueueCounts>;

export const ExperimentSummary = z.object({
  id: ExperimentId,
  name: z.string(),
  preset: ExperimentPresetName,
  createdAt: z.string(),
  total: z.number().int(),
  counts: QueueCounts,
  /** Whether a queue in this process is running it now. */
  active: z.boolean(),
  /** Seconds until every job is done, from the running jobs' ETAs and the mean job time; null when unknown. */
  etaSeconds: z.number().nullable(),
});
export type ExperimentSummary = z.infer<typeof ExperimentSummary>;

export const ExperimentJobView = ExperimentJob.merge(QueueEntry.omit({ key: true })).extend({ progress: LiveProgress.nullable() });
export type ExperimentJobView = z.infer<typeof ExperimentJobView>;

export const ExperimentDetail = z.object({
  summary: ExperimentSummary,
  spec: ExperimentSpec,
  jobs: z.array(ExperimentJobView),
  concurrency: z.number().int().min(1),
});
export type ExperimentDetail = z.infer<typeof ExperimentDetail>;

/** Run statuses on disk; `interrupted` is a run whose process died (or was killed) mid-way. */
export const RunStatus = z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export type RunStatus = z.infer<typeof RunStatus>;

/** The metrics of Z on one evaluation set. */
export const EvalResult = z.object({
  name: z.string(),
  accuracy: z.number(),
  macroF1: z.number(),
  rows: z.number().int(),
  sve: z.number(),
  lsvr: z.number(),
  /** SVE and LSVR of the backbone's features F on the same set (absent in runs made before they were recorded). */
  backboneSve: z.number().optional(),
  backboneLsvr: z.number().optional(),
});
export type EvalResult = z.infer<typeof EvalResult>;

/** `runs/<id>/result.json` of a tuning run. */
export const TuneRunResult = z.object({
  method: TuneMethodName,
  /** ID test (or the OOD source's own test split), null when the task has none. */
  test: EvalResult.nullable(),
  /** One entry per OOD target domain. */
  targets: z.array(EvalResult),
  /** Mean accuracy over the targets; null for ID tasks. */
  oodAccuracy: z.number().nullable(),
  /** Mean LSVR of Z over the targets; null for ID tasks. */
  oodLsvr: z.number().nullable(),
  /** Singular values of Z on the first evaluation set (descending, top 256). */
  singularValues: z.array(z.number()),
  /** The same for the backbone's own features F on that set. */
  backboneSingularValues: z.array(z.number()),
  /** SVE of F on the set Z's `sve` is read on (ID test, else the first target). */
  backboneSve: z.number(),
  /** LSVR of F: the mean over OOD targets for OOD tasks, like `oodLsvr`; else on the test set. */
  backboneLsvr: z.number(),
  backend: z.string(),
  seconds: z.number(),
  trainRows: z.number().int(),
  epochs: z.number().int(),
  params: z.record(z.string(), z.unknown()),
});
export type TuneRunResult = z.infer<typeof TuneRunResult>;

export const RunSummary = z.object({
  id: z.string(),
  status: RunStatus,
  kind: z.string(),
  experimentId: z.string().nullable(),
  jobKey: z.string().nullable(),
  attempt: z.number().int().min(1),
  createdAt: z.string(),
  endedAt: z.string().nullable(),
  error: z.string().nullable(),
  /** Headline numbers, when finished. */
  accuracy: z.number().nullable(),
  oodAccuracy: z.number().nullable(),
});
export type RunSummary = z.infer<typeof RunSummary>;

/** One line of `metrics.jsonl`: a point of a named series (loss per step, accuracy per epoch, a spectrum). */
export const MetricPoint = z.object({
  series: z.string(),
  step: z.number(),
  values: z.record(z.string(), z.number()),
});
export type MetricPoint = z.infer<typeof MetricPoint>;

export const RunDetail = z.object({
  summary: RunSummary,
  config: z.record(z.string(), z.unknown()),
  result: TuneRunResult.nullable(),
  /** Every point, in order; long loss series are thinned to at most `maxPoints` per series. */
  metrics: z.array(MetricPoint),
  /** The last 64 KiB of `log.txt`. */
  log: z.string(),
});
export type RunDetail = z.infer<typeof RunDetail>;

/** Mean ± sample std over seeds (n = number of finished seeds; std is null for n < 2). */
export const Stat = z.object({ mean: z.number(), std: z.number().nullable(), n: z.number().int() });
export type Stat = z.infer<typeof Stat>;

/** One row of the comparison: a (backbone, task, method, fraction) cell aggregated over seeds. */
export const CompareRow = z.object({
  backbone: z.string(),
  gamma: z.number().nullable(),
  task: z.string(),
  taskType: z.enum(['id', 'ood']),
  method: z.string(),
  fraction: z.number(),
  seeds: z.array(z.number().int()),
  accuracy: Stat.nullable(),
  macroF1: Stat.nullable(),
  oodAccuracy: Stat.nullable(),
  sve: Stat.nullable(),
  lsvr: Stat.nullable(),
  backboneSve: Stat.nullable(),
  backboneLsvr: Stat.nullable(),
});
export type CompareRow = z.infer<typeof CompareRow>;

export const CompareResult = z.object({
  experimentId: z.string(),
  name: z.string(),
  preset: ExperimentPresetName,
  rows: z.array(CompareRow),
  /** Finished / total jobs behind the numbers. */
  finished: z.number().int(),
  total: z.number().int(),
});
export type CompareResult = z.infer<typeof CompareResult>;

export const ProjectDir = z.string().min(1).max(4096);

/** Pushed while experiments run; `live` events are coalesced per job (at most ~10 a second). */
export const ExperimentEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('queue'), projectDir: z.string(), experimentId: z.string(), summary: ExperimentSummary, jobs: z.array(ExperimentJobView) }),
  z.object({
    type: z.literal('live'),
    projectDir: z.string(),
    experimentId: z.string(),
    key: z.string(),
    runId: z.string().nullable(),
    progress: LiveProgress.nullable(),
    /** New points since the previous `live` event of this job, in order. */
    points: z.array(MetricPoint),
  }),
]);
export type ExperimentEvent = z.infer<typeof ExperimentEvent>;

/** The worker job that runs one experiment job as a run in the project (`src/core/jobs/kinds/tune.ts`). */
export const TuneJobSpec = z.object({
  kind: z.literal('tune'),
  projectDir: z.string().min(1),
  runId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$/),
  experimentId: z.string().nullable().default(null),
  attempt: z.number().int().min(1).default(1),
  job: ExperimentJob,
});
export type TuneJobSpec = z.infer<typeof TuneJobSpec>;

/** The label a method has in tables: its `label`, else `lp`, `mlp`, `nmtune` or `nmtune-reference`. */
export function methodLabel(m: TuneMethodSpec): string {
  if (m.label) return m.label;
  return m.method === 'nmtune' && m.preset !== 'paper' ? `nmtune-${m.preset}` : m.method;
}

/** γ as a whole percent for file templates (0.05 → "5"). */
function gammaPercent(g: number | undefined): string {
  return g === undefined ? '' : String(Math.round(g * 1000) / 10);
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(backbone|task|gamma)\}/g, (_, k: string) => vars[k]);
}

/**
 * Expand a spec into its jobs: backbones × tasks × methods × fractions × seeds, in that nesting
 * order (so the first jobs give one number per cell early). Keys are stable: the same spec
 * always gives the same keys and order. Throws on duplicate ids or labels (they would make
 * two jobs share a key).
 */
export function expandSpec(spec: ExperimentSpec): ExperimentJob[] {
  const dup = (what: string, ids: string[]) => {
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) throw new NmlabError('BAD_REQUEST', `the spec has two ${what} called "${id}"; give each a distinct ${what === 'methods' ? 'label' : 'id'}`);
      seen.add(id);
    }
  };
  dup('backbones', spec.backbones.map((b) => b.id));
  dup('tasks', spec.tasks.map((t) => t.id));
  dup('methods', spec.methods.map(methodLabel));
  const jobs: ExperimentJob[] = [];
  for (const b of spec.backbones) {
    for (const t of spec.tasks) {
      const vars = { backbone: b.id, task: t.id, gamma: gammaPercent(b.gamma) };
      const src = (s: FeatureSource): FeatureSource => ({ features: fill(s.features, vars), labels: fill(s.labels, vars) });
      for (const m of spec.methods) {
        const label = methodLabel(m);
        for (const fraction of [...new Set(spec.fractions)]) {
          for (const seed of [...new Set(spec.seeds)]) {
            const params: TuneOverrides = { ...spec.defaults, ...m.params };
            jobs.push({
              key: `${b.id}/${t.id}/${label}/f${fraction}/s${seed}`,
              index: jobs.length,
              backbone: b.id,
              gamma: b.gamma ?? null,
              task: t.id,
              taskType: t.type,
              method: label,
              baseMethod: m.method,
              preset: m.preset,
              fraction,
              seed,
              params,
              train: src(t.train),
              test: t.test ? src(t.test) : null,
              targets: t.type === 'ood' ? t.targets.map((x) => ({ name: x.name, ...src(x) })) : [],
            });
          }
        }
      }
    }
  }
  return jobs;
}

/** What a preset needs to know about the project: its backbones and the feature sets found. */
export interface PresetInput {
  backbones: BackboneSpec[];
  tasks: TaskSpec[];
}

/** The paper's default noise ratios γ (DESIGN §1.3): 0, 5, 10, 20, 30 %. */
export const PAPER_GAMMAS = [0, 0.05, 0.1, 0.2, 0.3];

/**
 * The presets of the paper's layouts.
 * - `noise-study` (Figures 2, 3, 5, 7): one backbone per γ; LP, MLP and NMTune on ID and OOD
 *   tasks; the compare view plots ID accuracy and SVE, OOD accuracy and LSVR against γ.
 * - `method-comparison` (Table 4): methods × tasks, mean ± std over 3 seeds.
 * - `custom`: LP only, one seed, as a starting point.
 */
export function presetSpec(preset: ExperimentPresetName, input: PresetInput, name?: string): ExperimentSpecInput {
  const methods: TuneMethodSpecInput[] = [{ method: 'lp' }, { method: 'mlp' }, { method: 'nmtune', preset: 'paper' }];
  switch (preset) {
    case 'noise-study':
      return {
        name: name ?? 'Noise study',
        preset,
        backbones: [...input.backbones].sort((a, b) => (a.gamma ?? 0) - (b.gamma ?? 0)),
        tasks: input.tasks,
        methods,
        fractions: [1],
        seeds: [0],
      };
    case 'method-comparison':
      return { name: name ?? 'Method comparison', preset, backbones: input.backbones, tasks: input.tasks, methods, fractions: [1], seeds: [0, 1, 2] };
    case 'custom':
      return { name: name ?? 'Experiment', preset, backbones: input.backbones, tasks: input.tasks, methods: [{ method: 'lp' }], fractions: [1], seeds: [0] };
  }
}

const COLUMNS = ['backbone', 'gamma', 'task', 'taskType', 'method', 'fraction', 'seeds'] as const;
const STATS = ['accuracy', 'macroF1', 'oodAccuracy', 'sve', 'lsvr', 'backboneSve', 'backboneLsvr'] as const;

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The comparison as CSV: one row per cell, `<stat>_mean`, `<stat>_std` and `n` columns. */
export function compareToCsv(c: CompareResult): string {
  const header = [...COLUMNS, ...STATS.flatMap((s) => [`${s}_mean`, `${s}_std`]), 'n'];
  const lines = [header.join(',')];
  for (const r of c.rows) {
    const n = Math.max(0, ...STATS.map((s) => r[s]?.n ?? 0));
    lines.push(
      [
        ...COLUMNS.map((k) => (k === 'seeds' ? r.seeds.join(' ') : r[k])),
        ...STATS.flatMap((s) => [r[s]?.mean, r[s]?.std]),
        n,
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * The feature files of a project as the builder sees them. Convention:
 * `features/<backbone>/<dataset>/<split>.npy` (M×D float32) with
 * `features/<backbone>/<dataset>/<split>.labels.npy` (M int labels), and optionally
 * `features/<backbone>/meta.json` with `{"gamma": 0.1}` (the backbone's pre-training noise).
 * Split `train` is the training set, `test` the ID test; any other split is an OOD target
 * domain of that dataset.
 */
export const FeatureLayout = z.object({
  backbones: z.array(BackboneSpec.extend({ datasets: z.array(z.string()) })),
  datasets: z.array(z.object({ id: z.string(), splits: z.array(z.object({ name: z.string(), rows: z.number().int(), dim: z.number().int() })) })),
});
export type FeatureLayout = z.infer<typeof FeatureLayout>;

const split = (dataset: string, name: string): FeatureSource => ({
  features: `features/{backbone}/${dataset}/${name}.npy`,
  labels: `features/{backbone}/${dataset}/${name}.labels.npy`,
});

/**
 * Tasks of a layout's datasets: an ID task for each dataset with `train` and `test`, and an OOD
 * task (`<dataset>-ood`) for each dataset with `train` and other splits (its target domains).
 */
export function tasksFromLayout(layout: FeatureLayout, datasets?: string[]): TaskSpec[] {
  const tasks: TaskSpec[] = [];
  for (const d of layout.datasets) {
    if (datasets && !datasets.includes(d.id)) continue;
    const names = d.splits.map((s) => s.name);
    if (!names.includes('train')) continue;
    if (names.includes('test')) tasks.push({ type: 'id', id: d.id, train: split(d.id, 'train'), test: split(d.id, 'test') });
    const targets = names.filter((n) => n !== 'train' && n !== 'test');
    if (targets.length) {
      tasks.push({
        type: 'ood',
        id: `${d.id}-ood`,
        train: split(d.id, 'train'),
        ...(names.includes('test') ? { test: split(d.id, 'test') } : {}),
        targets: targets.map((t) => ({ name: t, ...split(d.id, t) })),
      });
    }
  }
  return tasks;
}
