import { z } from 'zod';

/**
 * A dataset in a project: `datasets/<id>/dataset.json` plus its arrays as `.npy` (images
 * uint8 N×H×W×C, labels int32, optional per-sample domain and split indices). Derived
 * datasets (label noise, fractions, corruption domains) record their parent and never edit it.
 */
export const DATASET_SCHEMA_VERSION = 1;

export const DatasetId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,79}$/, 'a dataset id is lower-case letters, digits, - and _ (max 80)');

export const DatasetSource = z.discriminatedUnion('type', [
  z.object({ type: z.literal('image-folder'), path: z.string(), layout: z.enum(['class', 'domain/class']) }),
  z.object({
    type: z.literal('idx'),
    images: z.string(),
    labels: z.string(),
    testImages: z.string().optional(),
    testLabels: z.string().optional(),
  }),
  z.object({ type: z.literal('features'), features: z.string(), labels: z.string() }),
  z.object({ type: z.literal('derived'), parent: DatasetId }),
]);
export type DatasetSource = z.infer<typeof DatasetSource>;

export const NoiseRecord = z.object({
  type: z.string(),
  /** γ (pre-training) or η (downstream): the fraction of labels flipped. */
  ratio: z.number().min(0).max(1),
  seed: z.number().int(),
  /** Which split rows could be flipped (test labels stay clean by default). */
  splits: z.array(z.enum(['train', 'test', 'all'])),
  flippedCount: z.number().int().min(0),
  /** `flipped.npy`, int32 row indices whose label changed. */
  flippedFile: z.string(),
  /** Realised transition matrix T[i][j] = P(noisy = j | clean = i), over the eligible rows. */
  transitionMatrix: z.array(z.array(z.number())),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type NoiseRecord = z.infer<typeof NoiseRecord>;

export const CorruptionName = z.enum(['rotation', 'inversion', 'edge', 'gaussian-noise', 'blur', 'low-contrast']);
export type CorruptionName = z.infer<typeof CorruptionName>;

export const CorruptionSpec = z.object({
  name: CorruptionName,
  /** 1 (mild) to 5 (severe), as in ImageNet-C. */
  severity: z.number().int().min(1).max(5).default(3),
});
export type CorruptionSpec = z.infer<typeof CorruptionSpec>;

export const Derivation = z.discriminatedUnion('op', [
  z.object({ op: z.literal('noise'), parent: DatasetId, noise: NoiseRecord }),
  z.object({
    op: z.literal('fraction'),
    parent: DatasetId,
    fraction: z.number().gt(0).max(1),
    seed: z.number().int(),
    split: z.enum(['train', 'test', 'all']),
  }),
  z.object({
    op: z.literal('corruption'),
    parent: DatasetId,
    corruptions: z.array(CorruptionSpec),
    seed: z.number().int(),
    split: z.enum(['train', 'test', 'all']),
    /** Whether the clean rows are kept as the first domain (the source). */
    includeClean: z.boolean(),
  }),
  /** The parent's rows and labels with a new stratified train/test split (its own `split.npy`). */
  z.object({ op: z.literal('split'), parent: DatasetId, testFraction: z.number().gt(0).lt(1), seed: z.number().int() }),
]);
export type Derivation = z.infer<typeof Derivation>;

export const SplitInfo = z.object({
  /** `split.npy`: uint8 per row, 0 = train, 1 = test. */
  file: z.string(),
  train: z.number().int().min(0),
  test: z.number().int().min(0),
  /** How it was made: given by the source files, or a seeded stratified split. */
  method: z.enum(['given', 'stratified']),
  testFraction: z.number().min(0).max(1).optional(),
  seed: z.number().int().optional(),
});
export type SplitInfo = z.infer<typeof SplitInfo>;

export const DatasetManifest = z.object({
  schemaVersion: z.number().int().min(1),
  id: DatasetId,
  name: z.string().min(1).max(200),
  createdAt: z.string(),
  kind: z.enum(['images', 'features']),
  source: DatasetSource,
  classes: z.array(z.string()).min(1),
  /** Domain names; a single-domain set has one, usually `default`. */
  domains: z.array(z.string()).min(1),
  count: z.number().int().min(0),
  classCounts: z.array(z.number().int().min(0)),
  /** For image sets: the stored size (every image has it). */
  image: z.object({ height: z.number().int().min(1), width: z.number().int().min(1), channels: z.union([z.literal(1), z.literal(3)]) }).optional(),
  /** For feature sets: the feature width. */
  featureDim: z.number().int().min(1).optional(),
  /**
   * Array files, relative to the dataset folder. Derived sets that share their parent's pixels
   * leave `images`/`features` out and list `indices` (int32 parent rows) instead.
   */
  arrays: z.object({
    images: z.string().optional(),
    features: z.string().optional(),
    labels: z.string(),
    domains: z.string().optional(),
    indices: z.string().optional(),
  }),
  split: SplitInfo.optional(),
  derived: Derivation.optional(),
  provenance: z
    .object({
      tool: z.string(),
      version: z.string(),
      /** Per-file or per-option notes from the import (resized images, skipped files, ...). */
      notes: z.array(z.string()).default([]),
    })
    .passthrough(),
});
export type DatasetManifest = z.infer<typeof DatasetManifest>;

/** One line of `dataset list`. */
export const DatasetSummary = z.object({
  id: DatasetId,
  name: z.string(),
  kind: z.enum(['images', 'features']),
  count: z.number().int(),
  classes: z.number().int(),
  domains: z.array(z.string()),
  parent: z.string().nullable(),
  op: z.string().nullable(),
});
export type DatasetSummary = z.infer<typeof DatasetSummary>;
