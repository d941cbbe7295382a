import { z } from 'zod';
import { ClassIndex, ClassMap } from './labelNoise';

/**
 * Noisy pre-training of an NMLab CNN backbone (DESIGN §4 "Pre-training in NMLab"; the
 * paper's §3 protocol) as a job: train on a project image dataset whose labels get symmetric or
 * asymmetric (§7.3) noise γ, save the backbone under `backbones/<id>/` with its noise provenance.
 */
export const PretrainJobSpec = z.object({
  kind: z.literal('pretrain'),
  projectDir: z.string().min(1),
  /** Image dataset id in the project; its train split (every row when it has no split) is used. */
  dataset: z.string().min(1),
  /** Clean held-out set for the reported test accuracy: the same dataset's test split by default, if it has one. */
  testDataset: z.string().min(1).optional(),
  /**
   * Label noise on the training labels: symmetric (the default type), or asymmetric (paper
   * §7.3) — only samples of `classes` (default: the map's sources) flip, to `map[class]` when a
   * class map is given, else to another of `classes`.
   */
  noise: z.union([
    z.object({ type: z.literal('symmetric').default('symmetric'), ratio: z.number().min(0).max(1), seed: z.number().int().min(0).optional() }),
    z.object({
      type: z.literal('asymmetric'),
      ratio: z.number().min(0).max(1),
      seed: z.number().int().min(0).optional(),
      classes: z.array(ClassIndex).min(1).optional(),
      map: ClassMap.optional(),
    }),
  ]),
  /** Seed of initialisation and shuffling (and of the noise unless `noise.seed` is given). */
  seed: z.number().int().min(0).default(0),
  /** Use the first `limit` training rows. */
  limit: z.number().int().min(1).optional(),
  /** Backbone id (arch.tag); `nmlab-cnn.gNN` from γ by default. */
  id: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$/).optional(),
  /** Replace an existing backbone with the same id. */
  force: z.boolean().default(false),
  hyper: z
    .object({
      epochs: z.number().int().min(1).max(1000),
      batchSize: z.number().int().min(2).max(4096),
      optimizer: z.enum(['adamw', 'sgd']),
      lr: z.number().positive(),
      weightDecay: z.number().min(0),
      momentum: z.number().min(0).max(1),
      warmupEpochs: z.number().min(0),
      loss: z.enum(['ce', 'bce']),
      labelSmoothing: z.number().min(0).lt(1),
      flip: z.boolean(),
    })
    .partial()
    .default({}),
  arch: z
    .object({
      stemWidth: z.number().int().min(1).max(512),
      stemStride: z.union([z.literal(1), z.literal(2)]),
      widths: z.array(z.number().int().min(1).max(1024)).min(1).max(6),
      blocks: z.array(z.number().int().min(1).max(16)).min(1).max(6),
    })
    .partial()
    .default({}),
});
export type PretrainJobSpec = z.infer<typeof PretrainJobSpec>;

/** What a pretrain job returns. */
export const PretrainJobResult = z.object({
  id: z.string(),
  /** Backbone folder, relative to the project. */
  backbone: z.string(),
  featureDim: z.number().int(),
  sha256: z.string(),
  noise: z.object({ type: z.string(), ratio: z.number(), seed: z.number() }),
  /** sha256 of the noisy training labels the backbone was trained on (little-endian int32, row order). */
  labelsSha256: z.string().optional(),
  flippedCount: z.number().int(),
  epochs: z.number().int(),
  trainAccNoisy: z.number(),
  trainAccClean: z.number(),
  /** Share of the flipped training labels the backbone reproduces (null at γ = 0); absent in results from before it was recorded. */
  memorised: z.number().nullable().optional(),
  testAcc: z.number().optional(),
  backend: z.string(),
  seconds: z.number(),
});
export type PretrainJobResult = z.infer<typeof PretrainJobResult>;
