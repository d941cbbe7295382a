import { z } from 'zod';
import { CorruptionName, DatasetId } from './datasets';
import { asymmetricNoiseProblem, ClassIndex, ClassMap } from './labelNoise';
import { PretrainJobSpec } from './pretrain';
import { DownstreamNoise, TuneMethodName, TuneOverrides, TunePreset } from './tuning';

/**
 * A study (issue 9): the paper's pipeline on a project's own objects — datasets and backbones
 * named by their project ids — from (noisy pre-training per γ) or imported backbones, through
 * features and spectra, to LP / MLP / NMTune and their comparison. Users write it as YAML or
 * JSON (docs/study-spec.md) or in the builder; the queue runs its expansion, a graph of jobs
 * ({@link StudyJob}) with dependencies. Nothing here is a file format: the files under
 * `experiments/<id>/` are described in ./experiments.ts.
 */
export const STUDY_SCHEMA_VERSION = 2;

/** An M×D features `.npy` and its M labels `.npy`, both inside the project (the escape hatch's sets). */
export const FeatureSource = z.object({ features: z.string().min(1).max(1024), labels: z.string().min(1).max(1024) });
export type FeatureSource = z.infer<typeof FeatureSource>;

/** Ids a spec gives (tasks, method labels): they become parts of job keys. */
export const StudySlug = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'use letters, digits, ".", "-" and "_" (max 64)');

/** The ratio of flipped labels, a fraction in [0, 1] (30 % is 0.3). */
const Ratio = z.number().min(0).max(1);
const Seed = z.number().int().min(0).max(2 ** 31 - 1);

/** Which rows of a dataset: its train or test split (from `split.npy`), or every row. */
export const SplitName = z.enum(['train', 'test', 'all']);
export type SplitName = z.infer<typeof SplitName>;

/** An imported (or earlier pre-trained) project backbone; γ from its metadata unless given. */
export const StudyBackbone = z
  .object({
    /** The backbone's project id (`backbones/<id>/backbone.json`). */
    id: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$/, 'a backbone id is arch or arch.tag (letters, digits, - and _)'),
    /** Pre-training label noise γ; default: the backbone's recorded `provenance.noise.ratio`, else unknown. */
    gamma: Ratio.optional(),
  })
  .strict();
export type StudyBackbone = z.infer<typeof StudyBackbone>;

/** An asymmetric noise that could not be drawn is a spec problem at its key (./labelNoise.ts). */
function refineAsymmetric(n: { classes?: number[]; map?: ClassMap }, ctx: z.RefinementCtx): void {
  const p = asymmetricNoiseProblem(n.classes, n.map);
  if (p) ctx.addIssue({ code: 'custom', path: [p.key], message: p.message });
}

/**
 * Label noise (paper §4.1, §7.3): symmetric flips to a uniformly chosen other class, or
 * asymmetric flips within `classes` (optionally along a class map `map`: class → class).
 */
export const NoiseSpec = z.discriminatedUnion('type', [
  z.object({ type: z.literal('symmetric'), seed: Seed.default(0) }).strict(),
  z
    .object({
      type: z.literal('asymmetric'),
      seed: Seed.default(0),
      classes: z.array(ClassIndex).min(1).optional(),
      map: ClassMap.optional(),
    })
    .strict()
    .superRefine(refineAsymmetric),
]);
export type NoiseSpec = z.infer<typeof NoiseSpec>;

/**
 * The pre-training axis: one NMLab CNN per γ × replicate seed, trained on the dataset's train
 * split with noise γ, exported to ONNX and saved as a project backbone (shared by every
 * study that asks for the same one).
 */
export const PretrainAxis = z
  .object({
    /** Image dataset id; its train split is pre-trained on, its test split gives the clean accuracy. */
    dataset: DatasetId,
    noise: NoiseSpec.default({ type: 'symmetric', seed: 0 }),
    /** Noise ratios γ (the paper: [0, 0.05, 0.1, 0.2, 0.3]). */
    gammas: z.array(Ratio).min(1),
    /** Pre-training seeds: replicates of each γ (initialisation and shuffling). */
    seeds: z.array(Seed).min(1).default([0]),
    /** CNN architecture (src/core/pretrain/cnn.ts defaults otherwise). */
    architecture: PretrainJobSpec.shape.arch,
    /** Training recipe (epochs, batch size, optimiser, ...). */
    recipe: PretrainJobSpec.shape.hyper,
  })
  .strict();
export type PretrainAxis = z.infer<typeof PretrainAxis>;

/** An in-domain task: tune on `train` rows of a project dataset, test on its `test` rows. */
export const StudyIdTask = z
  .object({
    id: StudySlug,
    dataset: DatasetId,
    train: SplitName.default('train'),
    test: SplitName.default('test'),
  })
  .strict();
export type StudyIdTask = z.infer<typeof StudyIdTask>;

/**
 * An OOD target: rows of another project dataset (its `split`, optionally one of its `domain`s,
 * e.g. a domain of an imported `domain/class` folder), or a corruption domain of the source
 * task's test rows (made by the study).
 */
export const OodTarget = z.union([
  z.object({ dataset: DatasetId, split: SplitName.default('test'), domain: z.string().min(1).optional(), name: StudySlug.optional() }).strict(),
  z.object({ corruption: CorruptionName, severity: z.number().int().min(1).max(5).default(3), name: StudySlug.optional() }).strict(),
]);
export type OodTarget = z.infer<typeof OodTarget>;

/**
 * An OOD task (paper §4, train on one domain): the source is an ID task's training set, so the
 * ID task's fits serve it — no model is trained twice; each target adds an evaluation.
 */
export const StudyOodTask = z
  .object({
    id: StudySlug,
    /** The ID task whose training set is the source domain. */
    source: StudySlug,
    targets: z.array(OodTarget).min(1),
  })
  .strict();
export type StudyOodTask = z.infer<typeof StudyOodTask>;

/**
 * ESCAPE HATCH: a task on raw embedding `.npy` files (M×D float32 + M int labels) that NMLab
 * did not compute. `{backbone}`, `{task}` and `{gamma}` in paths are filled per backbone;
 * the backbones of such a study need not exist in the project. Prefer `tasks` on datasets.
 */
export const EmbeddingsTask = z
  .object({
    id: StudySlug,
    train: FeatureSource,
    test: FeatureSource.optional(),
    targets: z.array(FeatureSource.extend({ name: StudySlug })).default([]),
  })
  .strict();
export type EmbeddingsTask = z.infer<typeof EmbeddingsTask>;

/**
 * A study's methods: black-box tuning on features (lp, mlp, nmtune) and white-box tuning of the
 * backbone itself on the task's images (ft, lora: src/core/jobs/kinds/finetune.ts; cross-entropy
 * only; `params` lr, weightDecay, epochs, batchSize, schedule apply).
 */
export const StudyMethodName = z.enum([...TuneMethodName.options, 'ft', 'lora']);
export type StudyMethodName = z.infer<typeof StudyMethodName>;

/** One method column; `label` names it in tables (default: the method, `nmtune-reference` for that preset). */
export const StudyMethod = z
  .object({
    method: StudyMethodName,
    label: StudySlug.optional(),
    preset: TunePreset.default('paper'),
    params: TuneOverrides.default({}),
  })
  .strict();
export type StudyMethod = z.infer<typeof StudyMethod>;
export type StudyMethodInput = z.input<typeof StudyMethod>;

/** Which compare layout leads: γ curves (`noise-study`), methods side by side (`method-comparison`), or none (`custom`). */
export const StudyLayout = z.enum(['custom', 'noise-study', 'method-comparison']);
export type StudyLayout = z.infer<typeof StudyLayout>;

/** The study, as users write it. */
export const StudySpec = z
  .object({
    schemaVersion: z.literal(STUDY_SCHEMA_VERSION).default(STUDY_SCHEMA_VERSION),
    name: z.string().min(1).max(200),
    layout: StudyLayout.default('custom'),
    /** Project backbones (imported, or pre-trained earlier). */
    backbones: z.array(StudyBackbone).default([]),
    /** Backbones pre-trained by this study. */
    pretrain: PretrainAxis.optional(),
    tasks: z.array(StudyIdTask).default([]),
    ood: z.array(StudyOodTask).default([]),
    /** ESCAPE HATCH: tasks on raw embedding files (see {@link EmbeddingsTask}). */
    embeddings: z.array(EmbeddingsTask).default([]),
    methods: z.array(StudyMethod).min(1),
    /** Stratified fractions of each training set, (0, 1]. */
    fractions: z.array(z.number().gt(0).max(1)).min(1).default([1]),
    /** Tuning seeds (nested inside pre-training replicates). */
    seeds: z.array(Seed).min(1).default([0]),
    /** Downstream label noise η (paper §7.4) on each fit's training labels; 0 = clean. */
    eta: z.array(Ratio).min(1).default([0]),
    /** How η redraws a label (any-class: the authors' semantics) and its seed (null: the fit's seed). */
    etaNoise: DownstreamNoise.omit({ eta: true }).default({ semantics: 'any-class', seed: null }),
    /** Overrides applied to every method before the method's own. */
    defaults: TuneOverrides.default({}),
    /** Base priority of the study's jobs (higher runs first). */
    priority: z.number().int().min(-1000).max(1000).default(0),
    /** The commands that make what the spec names (shown when the project lacks a dataset or backbone). */
    setup: z.string().max(4000).optional(),
  })
  .strict();
export type StudySpec = z.infer<typeof StudySpec>;
export type StudySpecInput = z.input<typeof StudySpec>;

/** The label of a method column: its `label`, else `lp`, `mlp`, `nmtune` or `nmtune-reference`. */
export function methodLabel(m: Pick<StudyMethod, 'method' | 'label' | 'preset'>): string {
  if (m.label) return m.label;
  return m.method === 'nmtune' && m.preset !== 'paper' ? `nmtune-${m.preset}` : m.method;
}

// ---- the job graph ------------------------------------------------------------------------

/** The stages of a study, in dependency order. */
export const StudyStage = z.enum(['noise', 'pretrain', 'domains', 'features', 'spectrum', 'tune', 'aggregate']);
export type StudyStage = z.infer<typeof StudyStage>;

/**
 * Rows of a project dataset as an evaluation or training set: features come from the cache of
 * (backbone, `dataset`); `domain` keeps only rows of that domain (corruption domains).
 */
export const DatasetRows = z.object({
  name: z.string(),
  dataset: DatasetId,
  split: SplitName,
  domain: z.string().optional(),
});
export type DatasetRows = z.infer<typeof DatasetRows>;

/** A set of a tuning job: dataset rows, or (escape hatch) embedding files. */
export const StudySet = z.union([DatasetRows, FeatureSource.extend({ name: z.string() })]);
export type StudySet = z.infer<typeof StudySet>;

const JobBase = {
  /** Stable across restarts; unique in the study. */
  key: z.string(),
  index: z.number().int().min(0),
  /** Keys of the jobs that must succeed first. */
  deps: z.array(z.string()),
  /** One line for people: "pre-train γ=10 % seed 0". */
  title: z.string(),
};

/** The noise draw of one γ as a derived dataset (the pre-training labels). */
export const NoiseJob = z.object({
  ...JobBase,
  stage: z.literal('noise'),
  dataset: DatasetId,
  split: z.enum(['train', 'all']),
  ratio: Ratio,
  noise: NoiseSpec,
  /** The derived dataset it writes (an existing one with this id is reused). */
  output: DatasetId,
});
/** One backbone pre-trained on noisy labels, exported to ONNX, saved under `backbones/<backbone>/`. */
export const PretrainJob = z.object({
  ...JobBase,
  stage: z.literal('pretrain'),
  dataset: DatasetId,
  noisyDataset: DatasetId,
  gamma: Ratio,
  noise: NoiseSpec,
  seed: Seed,
  arch: PretrainJobSpec.shape.arch,
  hyper: PretrainJobSpec.shape.hyper,
  backbone: z.string(),
});
/** Corruption domains of a dataset's rows, as a derived dataset. */
export const DomainsJob = z.object({
  ...JobBase,
  stage: z.literal('domains'),
  dataset: DatasetId,
  split: SplitName,
  corruptions: z.array(z.object({ name: CorruptionName, severity: z.number().int().min(1).max(5) })).min(1),
  seed: Seed,
  output: DatasetId,
});
/** Features of every row of a dataset through a backbone (the project's feature cache). */
export const FeaturesJob = z.object({ ...JobBase, stage: z.literal('features'), backbone: z.string(), dataset: DatasetId });
/** SVE/LSVR of the backbone's features F on every set of a task (paper §5). */
export const SpectrumJob = z.object({
  ...JobBase,
  stage: z.literal('spectrum'),
  backbone: z.string(),
  gamma: z.number().nullable(),
  task: z.string(),
  sets: z.array(StudySet),
});
/** One fit: trained once, evaluated on the ID test and every OOD target of tasks sourced from it. */
export const TuneJob = z.object({
  ...JobBase,
  stage: z.literal('tune'),
  backbone: z.string(),
  gamma: z.number().nullable(),
  /** Pre-training replicate seed, when the backbone was pre-trained by the study. */
  replicate: z.number().int().nullable(),
  /** What replicates share: the pre-training setting (`g10 <dataset>`) for pre-trained backbones, else the backbone. */
  condition: z.string(),
  task: z.string(),
  /** OOD tasks this fit is evaluated for (their targets are in `targets`). */
  oodTasks: z.array(z.string()),
  method: StudyMethodName,
  /** The method column's label. */
  label: z.string(),
  preset: TunePreset,
  params: TuneOverrides,
  fraction: z.number(),
  seed: Seed,
  /** Downstream label noise (also in `params.downstreamNoise` when > 0). */
  eta: Ratio,
  train: StudySet,
  test: StudySet.nullable(),
  targets: z.array(StudySet),
});
/** The study's comparison, written to `experiments/<id>/compare.json`. */
export const AggregateJob = z.object({ ...JobBase, stage: z.literal('aggregate') });

export const StudyJob = z.discriminatedUnion('stage', [NoiseJob, PretrainJob, DomainsJob, FeaturesJob, SpectrumJob, TuneJob, AggregateJob]);
export type StudyJob = z.infer<typeof StudyJob>;
export type TuneStudyJob = z.infer<typeof TuneJob>;
export type PretrainStudyJob = z.infer<typeof PretrainJob>;

/** Jobs per stage, for the builder's preview and progress lines. */
export const StageCounts = z.record(StudyStage, z.number().int().min(0));
export type StageCounts = z.infer<typeof StageCounts>;

/** What a spec expands to in a project, before anything runs (the builder's "before start"). */
export const StudyPlan = z.object({
  jobs: z.array(StudyJob),
  stages: StageCounts,
  /** Seconds the queue's schedule of the graph takes at its concurrency, from the project's measured stage costs (priors where none); null when unknown. */
  etaSeconds: z.number().nullable(),
  /** Things the spec will do that a person should know (an existing backbone reused, γ unknown, ...). */
  notes: z.array(z.string()),
});
export type StudyPlan = z.infer<typeof StudyPlan>;

// ---- what each stage's run records (`runs/<runId>/result.json`, src/core/jobs/kinds/study.ts) ----
// A tune fit's result is the tuning run's own (`TuneRunResult`, ./tuning.ts; ft and lora:
// `FinetuneResult`, ./finetune.ts). Optional fields are absent in results from older NMLab
// versions (./legacy.ts names them).

/** The noisy dataset of a `noise` job: written now, or an identical one reused. */
export const StudyNoiseRunResult = z.object({
  dataset: DatasetId,
  /** Labels flipped; null where the dataset's manifest does not record it. */
  flippedCount: z.number().int().nullable(),
  /** sha256 of the noisy labels on the noise split's rows, in row order. */
  labelsSha256: z.string(),
  reused: z.boolean(),
});
export type StudyNoiseRunResult = z.infer<typeof StudyNoiseRunResult>;

/**
 * The backbone a `pretrain` job trained, or the one already in the project that it reused.
 * `labelsSha256` and `memorised` (trained), `labelsVerified` (reused) are absent in results
 * from before NMLab recorded them.
 */
export const StudyPretrainRunResult = z
  .object({
    backbone: z.string(),
    sha256: z.string(),
    reused: z.boolean(),
    /** sha256 of the noisy train labels it was trained on; null for a reused backbone that records none. */
    labelsSha256: z.string().nullable().optional(),
    /** Reused: whether its recorded labels were checked against the study's. */
    labelsVerified: z.boolean().optional(),
    flippedCount: z.number().int().nullable().optional(),
    /** Share of the flipped labels it reproduces (null at γ = 0). */
    memorised: z.number().nullable().optional(),
    testAccuracy: z.number().nullable().optional(),
  })
  .passthrough();
export type StudyPretrainRunResult = z.infer<typeof StudyPretrainRunResult>;

/** The corruption-domain dataset of a `domains` job (`count` only when written now). */
export const StudyDomainsRunResult = z.object({ dataset: DatasetId, reused: z.boolean(), count: z.number().int().optional() });
export type StudyDomainsRunResult = z.infer<typeof StudyDomainsRunResult>;

/** The feature-cache entry of a `features` job (project-relative `file`). */
export const StudyFeaturesRunResult = z.object({ file: z.string(), key: z.string(), count: z.number().int(), featureDim: z.number().int(), cached: z.boolean() });
export type StudyFeaturesRunResult = z.infer<typeof StudyFeaturesRunResult>;

/** SVE and LSVR of F per set of a `spectrum` job: rows L2-normalised then centred (headline), and of F as it is (`…Raw`). */
export const StudySpectrumRunResult = z.object({
  backbone: z.string(),
  task: z.string(),
  sets: z.record(z.string(), z.object({ rows: z.number().int(), sve: z.number(), lsvr: z.number(), sveRaw: z.number(), lsvrRaw: z.number() })),
});
export type StudySpectrumRunResult = z.infer<typeof StudySpectrumRunResult>;

/** The `aggregate` job: where the comparison went, and how much of the study it covers. */
export const StudyAggregateRunResult = z.object({ file: z.string(), rows: z.number().int(), finished: z.number().int() });
export type StudyAggregateRunResult = z.infer<typeof StudyAggregateRunResult>;

/** The worker job that runs one graph job of a study (src/core/jobs/kinds/study.ts). */
export const StudyJobSpec = z.object({
  kind: z.literal('study'),
  projectDir: z.string().min(1),
  experimentId: z.string().min(1),
  jobKey: z.string().min(1),
  runId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$/),
  attempt: z.number().int().min(1).default(1),
});
export type StudyJobSpec = z.infer<typeof StudyJobSpec>;
