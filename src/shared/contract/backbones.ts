import { z } from 'zod';

/**
 * Backbones carry their preprocessing (STYLE.md convention 4, after timm's PretrainedCfg):
 * a `backbone.json` beside each `.onnx` file says how to turn pixels into the model's input
 * and which output to read as features.
 */
export const BACKBONE_SCHEMA_VERSION = 1;

export const Interpolation = z.enum(['bilinear', 'nearest']);
export type Interpolation = z.infer<typeof Interpolation>;

export const Layout = z.enum(['nchw', 'nhwc']);
export type Layout = z.infer<typeof Layout>;

/** Every field optional: a backbone.json may declare only some; `resolvePreprocess` fills the rest. */
export const PreprocessSpec = z.object({
  /** timm's `input_size`: [channels, height, width]. */
  inputSize: z.tuple([z.number().int().min(1).max(4), z.number().int().min(1).max(8192), z.number().int().min(1).max(8192)]).optional(),
  /** Per-channel mean and std, applied after `scale` (so in [0,1] units when scale is 1/255). */
  mean: z.array(z.number()).min(1).max(4).optional(),
  std: z.array(z.number().positive()).min(1).max(4).optional(),
  interpolation: Interpolation.optional(),
  /** timm's `crop_pct`: resize the shorter side to size/cropPct, then centre-crop to size. */
  cropPct: z.number().gt(0).max(1).optional(),
  layout: Layout.optional(),
  /** Multiplies raw 0..255 pixel values before mean/std (1/255 by default). */
  scale: z.number().positive().optional(),
});
export type PreprocessSpec = z.infer<typeof PreprocessSpec>;

/** A fully resolved preprocessing, every field present; its hash is part of the feature-cache key. */
export const ResolvedPreprocess = z.object({
  inputSize: z.tuple([z.number().int(), z.number().int(), z.number().int()]),
  mean: z.array(z.number()),
  std: z.array(z.number()),
  interpolation: Interpolation,
  cropPct: z.number(),
  layout: Layout,
  scale: z.number(),
});
export type ResolvedPreprocess = z.infer<typeof ResolvedPreprocess>;

export const TensorInfo = z.object({
  name: z.string(),
  /** ONNX element type as onnxruntime names it (`float32`, `int64`, ...). */
  type: z.string(),
  /** Dimensions; symbolic ones (batch) are strings, unknown ones null. */
  shape: z.array(z.union([z.number(), z.string(), z.null()])),
});
export type TensorInfo = z.infer<typeof TensorInfo>;

/** What `inspect` finds in an .onnx file. */
export const OnnxInspection = z.object({
  file: z.string(),
  sha256: z.string(),
  bytes: z.number().int(),
  inputs: z.array(TensorInfo),
  outputs: z.array(TensorInfo),
});
export type OnnxInspection = z.infer<typeof OnnxInspection>;

export const BackboneProvenance = z
  .object({
    /** Who made it: `import` (a user's file), `nmlab-pretrain`, `pytorch-export`, ... */
    source: z.string(),
    createdAt: z.string().optional(),
    /** Pre-training label noise, for backbones NMLab pre-trained (DESIGN §4); asymmetric noise (§7.3) names its classes and class map. */
    noise: z
      .object({
        type: z.string(),
        ratio: z.number().min(0).max(1),
        seed: z.number().int().optional(),
        classes: z.array(z.number().int().min(0)).optional(),
        map: z.record(z.string().regex(/^\d+$/), z.number().int().min(0)).optional(),
      })
      .optional(),
    dataset: z.string().optional(),
    /** sha256 of the noisy training labels NMLab pre-trained it on (little-endian int32, row order). */
    labelsSha256: z.string().optional(),
    notes: z.string().optional(),
  })
  .passthrough();

/** The `backbone.json` beside a model file. */
export const BackboneManifest = z.object({
  schemaVersion: z.number().int().min(1),
  /** timm-style `arch.tag`, e.g. `resnet-tiny.fmnist-g10`. */
  id: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$/, 'a backbone id is arch or arch.tag (letters, digits, - and _)'),
  /** Model file name, relative to the backbone.json. */
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  format: z.literal('onnx').default('onnx'),
  /** Model input fed with images. */
  input: z.object({ node: z.string() }).optional(),
  preprocess: PreprocessSpec.default({}),
  output: z.object({ node: z.string(), featureDim: z.number().int().positive() }),
  license: z.string().optional(),
  provenance: BackboneProvenance.optional(),
});
export type BackboneManifest = z.infer<typeof BackboneManifest>;
export type BackboneManifestInput = z.input<typeof BackboneManifest>;

/** The `features` job: extract (or reuse cached) features of a project dataset with a backbone. */
export const FeaturesJobSpec = z.object({
  kind: z.literal('features'),
  /** Absolute project folder. */
  projectDir: z.string().min(1),
  /** Backbone folder, backbone.json or .onnx, relative to the project (or absolute). */
  backbone: z.string().min(1),
  dataset: z.string().min(1),
  outputNode: z.string().optional(),
  preprocess: PreprocessSpec.default({}),
  batchSize: z.number().int().min(1).max(4096).default(64),
  force: z.boolean().default(false),
});
export type FeaturesJobSpec = z.infer<typeof FeaturesJobSpec>;

/** What a `features` job returns. */
export const FeaturesJobResult = z.object({
  key: z.string(),
  /** Project-relative path of the `.npy`. */
  file: z.string(),
  count: z.number().int(),
  featureDim: z.number().int(),
  cached: z.boolean(),
  seconds: z.number(),
});
export type FeaturesJobResult = z.infer<typeof FeaturesJobResult>;
