import { z } from 'zod';

/**
 * Black-box tuning (DESIGN §4, paper §6): the one schema of a tuning fit's parameters, its
 * overrides, and the one shape of its result (`runs/<id>/result.json`). Everything that tunes
 * — the queue's tune job, the demo, `nmlab tune`, the UI form — takes `TuneOverrides`, resolves
 * them with `resolveTuneParams` (src/core/tuning/params.ts) and records the full `TuneParams`.
 */

export const TuneMethodName = z.enum(['lp', 'mlp', 'nmtune']);
export type TuneMethodName = z.infer<typeof TuneMethodName>;

/**
 * `paper`: eq. 4–7 as printed (λ = 0.01 on every term, L_SVD on σ₁, one view, L_MSE the
 * per-row squared distance averaged over the batch). `reference`: the authors' `nml_tune.py`
 * as written (two views, CE/COV/SVD on both views concatenated, `nn.MSELoss()` element mean
 * between the strong view's normalised Z and the weak view's normalised F, weights 1.0 /
 * 0.04 / 0.001, top-5 L_SVD, residual MLP, kaiming-uniform head).
 */
export const TunePreset = z.enum(['paper', 'reference']);
export type TunePreset = z.infer<typeof TunePreset>;

/** NMTune term weights and the number of leading singular values in L_SVD. */
export const TuneTerms = z
  .object({
    mse: z.number().min(0).describe('weight of L_MSE (eq. 4)'),
    cov: z.number().min(0).describe('weight of L_COV (eq. 5)'),
    svd: z.number().min(0).describe('weight of L_SVD (eq. 6)'),
    svdTopK: z.number().int().min(1).max(4096).describe('L_SVD on the mean of the top-k normalised singular values'),
  })
  .strict();
export type TuneTerms = z.infer<typeof TuneTerms>;

/**
 * Feature-space views for the `reference` preset (a black-box tuner sees features, not images).
 * With s = ‖f‖/√D the row's RMS and ε ~ N(0, 1) per element: weak view f + weakNoise·s·ε;
 * strong view (f ⊙ m)/(1−p) + strongNoise·s·ε, m ~ Bernoulli(1−p), p = strongDropout.
 */
export const TuneAugment = z
  .object({
    weakNoise: z.number().min(0).max(10).describe('weak view: Gaussian noise, in units of the row RMS'),
    strongNoise: z.number().min(0).max(10).describe('strong view: Gaussian noise, in units of the row RMS'),
    strongDropout: z.number().min(0).lt(1).describe('strong view: share of elements dropped (inverted dropout)'),
  })
  .strict();
export type TuneAugment = z.infer<typeof TuneAugment>;

/**
 * Downstream label noise η (paper §7.4) on the tuning set, drawn before training:
 * round(η·N) samples are picked; `any-class` (the authors' semantics) gives each a label drawn
 * uniformly from all C classes, possibly its own, so the realised flip rate is about η(C−1)/C;
 * `other-class` always changes the label (realised rate η). The realised rate is reported.
 */
export const DownstreamNoise = z
  .object({
    eta: z.number().min(0).max(1).describe('share of training labels redrawn'),
    semantics: z.enum(['any-class', 'other-class']).describe("any-class: uniform over all classes, maybe the same (the authors'); other-class: always another class"),
    seed: z.number().int().min(0).max(2 ** 31 - 1).nullable().describe("seed of the draw; null: the fit's seed"),
  })
  .strict();
export type DownstreamNoise = z.infer<typeof DownstreamNoise>;

/**
 * Every parameter of a tuning fit; all recorded with the run. Each field's description is what
 * `nmlab tune --help` and the UI form show.
 */
export const TuneParams = z
  .object({
    method: TuneMethodName.describe('lp (linear head on F), mlp (MLP h then the head) or nmtune (MLP with the eq. 4–6 terms)'),
    preset: TunePreset.describe("paper: eq. 4–7 with λ = 0.01; reference: the authors' nml_tune.py (two views, element-mean MSE, residual MLP)"),
    epochs: z.number().int().min(1).max(10000).describe('training epochs'),
    lr: z.number().positive().describe('AdamW learning rate'),
    weightDecay: z.number().min(0).describe('AdamW decoupled weight decay'),
    batchSize: z.number().int().min(2).max(65536).describe('rows per mini-batch (per view for the reference preset)'),
    schedule: z.enum(['cosine', 'linear', 'constant']).describe('learning-rate schedule per step'),
    warmupEpochs: z.number().min(0).describe('linear warm-up length in epochs (fractions allowed)'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).describe('seed of the data fraction, initialisation, batches and views'),
    fraction: z.number().gt(0).max(1).describe('stratified fraction of the training set, (0, 1]'),
    numClasses: z.number().int().min(2).nullable().describe('classes of the head; null: max label over all sets + 1'),
    mlpRatio: z.number().positive().max(64).describe('MLP hidden width ratio r (hidden = r·D)'),
    hiddenBlocks: z.number().int().min(1).max(16).describe('Linear–BatchNorm–ReLU blocks of the MLP'),
    residual: z.boolean().describe("Z = s ⊙ h(F) + F with a learned per-dimension scale s (the authors' mlp_with_res)"),
    residualScaleInit: z.number().describe('initial value of every entry of s'),
    headInit: z.enum(['torch-linear', 'kaiming-zero']).describe("torch-linear: nn.Linear's U(±1/√D); kaiming-zero: kaiming_uniform weight, zero bias (the authors' head)"),
    terms: TuneTerms.describe('NMTune term weights and the top-k of L_SVD'),
    augment: TuneAugment.describe('feature-space views of the reference preset'),
    engine: z
      .enum(['auto', 'tfjs', 'ort'])
      .describe('tfjs (autodiff, any MLP depth); ort (onnxruntime, hand-written backward: the one-block MLP, both presets, several times faster); auto: ort where it applies and loads'),
    downstreamNoise: DownstreamNoise.describe('downstream label noise η on the training set (paper §7.4)'),
  })
  .strict();
export type TuneParams = z.infer<typeof TuneParams>;

/*
 * Defaults (DESIGN §4): LP AdamW lr 0.01, no decay; MLP and NMTune lr 0.001, wd 1e-4; cosine,
 * 30 epochs, batch 128. The `reference` preset takes the authors' README command for NMTune
 * (`nml_tune.py --epochs=30 --lr=0.001 --wd=0.0001 --batch-size=64 --mlp-with-res=True
 * --mlp-res-scale-init=1.0 --mlp-after-ratio=4 --mlp-after-layers=1 --mse-loss-weight=1.0
 * --cov-loss-weight=0.04 --svd-loss-weight=0.001`, head kaiming-uniform with zero bias).
 */

/** Term weights of each preset (paper eq. 7 with λ = 0.01; the authors' argparse defaults). */
export const PRESET_TERMS: Record<TunePreset, TuneTerms> = {
  paper: { mse: 0.01, cov: 0.01, svd: 0.01, svdTopK: 1 },
  reference: { mse: 1.0, cov: 0.04, svd: 0.001, svdTopK: 5 },
};

/** The defaults of `method` under `preset`. LP has no MLP, so its preset changes nothing but the record. */
export function tuneDefaults(method: TuneMethodName, preset: TunePreset = 'paper'): TuneParams {
  const lp = method === 'lp';
  const ref = preset === 'reference' && !lp;
  return {
    method,
    preset,
    epochs: 30,
    lr: lp ? 0.01 : 0.001,
    weightDecay: lp ? 0 : 1e-4,
    batchSize: ref ? 64 : 128,
    schedule: 'cosine',
    warmupEpochs: 0,
    seed: 0,
    fraction: 1,
    numClasses: null,
    mlpRatio: 4,
    hiddenBlocks: 1,
    residual: ref,
    residualScaleInit: 1,
    headInit: ref ? 'kaiming-zero' : 'torch-linear',
    // MLP tuning is NMTune without its terms (the paper's ablation, §6.2).
    terms: method === 'nmtune' ? PRESET_TERMS[preset] : { mse: 0, cov: 0, svd: 0, svdTopK: PRESET_TERMS[preset].svdTopK },
    augment: { weakNoise: 0, strongNoise: 0.1, strongDropout: 0.1 },
    engine: 'auto',
    downstreamNoise: { eta: 0, semantics: 'any-class', seed: null },
  };
}

/** Any subset of the parameters; nested objects are replaced whole when given. */
export const TuneOverrides = TuneParams.partial();
export type TuneOverrides = z.infer<typeof TuneOverrides>;

/** One leaf of TuneParams as a form field or CLI flag: `terms.mse` is path ['terms', 'mse']. */
export interface TuneParamField {
  path: [keyof TuneParams] | [keyof TuneParams, string];
  /** The leaf's schema (validate a value with it). */
  schema: z.ZodType;
  kind: 'number' | 'integer' | 'boolean' | 'choice';
  choices: string[] | null;
  nullable: boolean;
  description: string;
}

function field(path: TuneParamField['path'], schema: z.ZodType): TuneParamField {
  const inner = schema instanceof z.ZodNullable ? (schema.unwrap() as z.ZodType) : schema;
  const kind = inner instanceof z.ZodEnum ? 'choice' : inner instanceof z.ZodBoolean ? 'boolean' : inner instanceof z.ZodNumber && inner.isInt ? 'integer' : 'number';
  return { path, schema, kind, choices: inner instanceof z.ZodEnum ? (inner.options as string[]) : null, nullable: inner !== schema, description: schema.description ?? '' };
}

/** Every tunable leaf of TuneParams except `method`, in schema order: what `nmlab tune` flags and the UI form are built from. */
export function tuneParamFields(): TuneParamField[] {
  const out: TuneParamField[] = [];
  for (const [key, schema] of Object.entries(TuneParams.shape) as Array<[keyof TuneParams, z.ZodType]>) {
    if (key === 'method') continue;
    if (schema instanceof z.ZodObject) for (const [sub, s] of Object.entries(schema.shape as Record<string, z.ZodType>)) out.push(field([key, sub], s));
    else out.push(field([key], schema));
  }
  return out;
}

/** Preprocessing of the headline SVE/LSVR (src/core/spectrum/preprocess.ts); raw values sit beside them. */
export const TUNE_SPECTRUM_PREPROCESS = 'reference' as const;

/** Accuracy, macro-F1 and spectra of Z and of the backbone's F on one evaluation set. */
export const EvalResult = z.object({
  name: z.string(),
  accuracy: z.number(),
  macroF1: z.number(),
  rows: z.number().int(),
  /** SVE and LSVR of Z after the reference preprocessing (rows L2-normalised, then centred). */
  sve: z.number(),
  lsvr: z.number(),
  /** The same on Z as it is. */
  sveRaw: z.number().optional(),
  lsvrRaw: z.number().optional(),
  /** SVE and LSVR of F on the same set, reference preprocessing, and raw. */
  backboneSve: z.number().optional(),
  backboneLsvr: z.number().optional(),
  backboneSveRaw: z.number().optional(),
  backboneLsvrRaw: z.number().optional(),
});
export type EvalResult = z.infer<typeof EvalResult>;

/** Where training stopped. */
export const TuneStop = z.object({
  reason: z.enum(['completed', 'aborted']),
  epochsDone: z.number().int().min(0),
  steps: z.number().int().min(0),
  totalSteps: z.number().int().min(0),
});
export type TuneStop = z.infer<typeof TuneStop>;

/** What the downstream noise did to the training labels. */
export const DownstreamNoiseResult = DownstreamNoise.extend({
  /** Training samples (after the data fraction) whose label changed. */
  flipped: z.number().int().min(0),
  rows: z.number().int().min(0),
  /** flipped / rows. */
  realisedFlipRate: z.number(),
  /** counts[i][j]: training samples of class i that now carry label j (null when η = 0). */
  transitionCounts: z.array(z.array(z.number().int().min(0))).nullable(),
});
export type DownstreamNoiseResult = z.infer<typeof DownstreamNoiseResult>;

/** `runs/<id>/result.json` of a tuning run: written only by runTuneFit (src/core/jobs/kinds/tune.ts). */
export const TuneRunResult = z.object({
  method: TuneMethodName,
  preset: TunePreset,
  /** The engine that trained (params.engine resolved) and what it ran on. */
  engine: z.enum(['tfjs', 'ort']),
  backend: z.string(),
  /** ID test (or the OOD source's own test split), null when there is none. */
  test: EvalResult.nullable(),
  /** One entry per OOD target. */
  targets: z.array(EvalResult),
  /** Mean accuracy over the targets; null without targets. */
  oodAccuracy: z.number().nullable(),
  /** Mean LSVR of Z over the targets; null without targets. */
  oodLsvr: z.number().nullable(),
  spectrumPreprocess: z.literal(TUNE_SPECTRUM_PREPROCESS),
  /** Singular values of Z on the first evaluation set (reference preprocessing, descending, top 256). */
  singularValues: z.array(z.number()),
  /** The same for the backbone's own features F on that set. */
  backboneSingularValues: z.array(z.number()),
  /** SVE of F on the set Z's `sve` is read on (ID test, else the first target). */
  backboneSve: z.number(),
  /** LSVR of F: the mean over targets where there are targets (like `oodLsvr`), else on the test set. */
  backboneLsvr: z.number(),
  downstreamNoise: DownstreamNoiseResult,
  stopped: TuneStop,
  seconds: z.number(),
  trainRows: z.number().int(),
  epochs: z.number().int(),
  params: TuneParams,
});
export type TuneRunResult = z.infer<typeof TuneRunResult>;

/**
 * A tuning result in the shape written before runTuneFit (commit 61d7e0a, 2026-12-02) by the
 * experiment queue's tune job, as {@link upgradeTuneRunResult} reads it. That shape recorded
 * neither the preset nor the engine, drew no downstream noise, kept no stop point and took SVE
 * and LSVR on Z as it is (no preprocessing). What it did record is carried over: the preset
 * from its params, the engine from its backend; the rest stays absent instead of guessed.
 */
export const LegacyTuneRunResult = TuneRunResult.omit({ preset: true, engine: true, spectrumPreprocess: true, downstreamNoise: true, stopped: true, params: true }).extend({
  /** Marks a result read from the old shape (the run page says so). */
  legacy: z.literal(true),
  /** `params.preset` as recorded; null where the params have none. */
  preset: TunePreset.nullable(),
  /** `ort` for an `onnxruntime (…)` backend, `tfjs` for a tfjs backend name; null otherwise. */
  engine: TuneRunResult.shape.engine.nullable(),
  /** SVE, LSVR and singular values are of Z as it is; each EvalResult's `*Raw` fields repeat them. */
  spectrumPreprocess: z.literal('none'),
  /** The parameters as the old tuner listed them (not TuneParams: `terms` may be null, `engine` `auto`). */
  params: z.record(z.string(), z.unknown()),
});
export type LegacyTuneRunResult = z.infer<typeof LegacyTuneRunResult>;

/** A tuning run's `result.json` as readers take it: the current shape or an upgraded legacy one. */
export const StoredTuneRunResult = z.discriminatedUnion('spectrumPreprocess', [TuneRunResult, LegacyTuneRunResult]);
export type StoredTuneRunResult = z.infer<typeof StoredTuneRunResult>;

const TF_BACKENDS = new Set(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The old EvalResult had SVE/LSVR without preprocessing: they are also the raw values. */
function upgradeEval(raw: unknown): unknown {
  if (!isRecord(raw)) return raw;
  const out: Record<string, unknown> = { ...raw, sveRaw: raw.sve, lsvrRaw: raw.lsvr };
  if (raw.backboneSve !== undefined) out.backboneSveRaw = raw.backboneSve;
  if (raw.backboneLsvr !== undefined) out.backboneLsvrRaw = raw.backboneLsvr;
  return out;
}

/**
 * Whether a parsed result.json is a black-box tuning result of either shape. Other runs' results
 * (pre-training, ft and lora fits, the first `nmlab tune` and demo runs) have no spectrum of Z.
 */
export function isTuneRunResultLike(raw: unknown): boolean {
  return isRecord(raw) && 'singularValues' in raw;
}

/**
 * The one place an old-shape tuning result becomes a {@link LegacyTuneRunResult}: a tuning
 * result without `spectrumPreprocess` (every current one has it) gets the fields above filled
 * from what it recorded. Anything else passes unchanged, so parsing stays idempotent and errors
 * still name the field that is wrong.
 */
export function upgradeTuneRunResult(raw: unknown): unknown {
  if (!isRecord(raw) || !isTuneRunResultLike(raw) || 'spectrumPreprocess' in raw) return raw;
  const params = isRecord(raw.params) ? raw.params : {};
  const preset = TunePreset.safeParse(params.preset);
  const backend = typeof raw.backend === 'string' ? raw.backend : '';
  const engine = backend.startsWith('onnxruntime') ? 'ort' : TF_BACKENDS.has(backend) ? 'tfjs' : null;
  return {
    ...raw,
    legacy: true,
    preset: preset.success ? preset.data : null,
    engine,
    spectrumPreprocess: 'none',
    test: raw.test === null ? null : upgradeEval(raw.test),
    targets: Array.isArray(raw.targets) ? raw.targets.map(upgradeEval) : raw.targets,
  };
}

/** The schema to read a `result.json` with: upgrade, then check. */
export const TuneRunResultFile = z.preprocess(upgradeTuneRunResult, StoredTuneRunResult);
