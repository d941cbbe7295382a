import { z } from 'zod';
import { DownstreamNoiseResult, EvalResult, TunePreset } from './tuning';

/**
 * White-box tuning (issue 11, item 3; DESIGN §4): the backbone's own weights train, on
 * onnxruntime through a training graph (src/core/onnx/autodiff).
 * - `ft`: full fine-tuning, every weight of the backbone and the head;
 * - `lora`: rank-r adapters beside every Conv (group 1) and linear (Gemm/MatMul) weight, the
 *   base weights frozen, adapters merged into the weights on export;
 * - `lp`: the same head on the frozen backbone (BatchNorm on its stored statistics), the
 *   baseline run through the same pipeline.
 */
export const FinetuneMethodName = z.enum(['ft', 'lora', 'lp']);
export type FinetuneMethodName = z.infer<typeof FinetuneMethodName>;

export const FinetuneParams = z
  .object({
    method: FinetuneMethodName,
    epochs: z.number().int().min(1).max(10000),
    lr: z.number().positive(),
    weightDecay: z.number().min(0),
    batchSize: z.number().int().min(2).max(65536),
    schedule: z.enum(['cosine', 'linear', 'constant']),
    seed: z.number().int().min(0).max(2 ** 31 - 1),
    /** LoRA rank of every adapter; null: the layer's output width / `loraReduction`, at least 1. */
    rank: z.number().int().min(1).max(4096).nullable(),
    /** DESIGN §4: "rank via reduction ratio 8". */
    loraReduction: z.number().int().min(1).max(4096),
    /** LoRA scale α/r is applied to B·A; null: α = r (scale 1). */
    loraAlpha: z.number().positive().nullable(),
    /**
     * NMTune's regularisers on the backbone's features Z (paper §6), L_MSE against the
     * pre-trained features: `paper` (λ = 0.01 each, σ₁) or `reference` (the authors' weights,
     * top-5 L_SVD, element-mean L_MSE; one view, no image augmentations); null: CE only.
     */
    nmtune: TunePreset.nullable(),
  })
  .strict();
export type FinetuneParams = z.infer<typeof FinetuneParams>;

export const FinetuneOverrides = FinetuneParams.partial();
export type FinetuneOverrides = z.infer<typeof FinetuneOverrides>;

/** What `nmlab finetune --json` prints and a run records. */
export const FinetuneResult = z.object({
  accuracy: z.number(),
  macroF1: z.number(),
  method: FinetuneMethodName,
  /** The onnxruntime execution provider training and evaluation ran on. */
  provider: z.string(),
  epochs: z.number().int(),
  /** Wall time of training and evaluation. */
  seconds: z.number(),
  params: FinetuneParams,
  /** Parameters the optimiser updated (for lora: adapters and head). */
  trainableParams: z.number().int(),
  /** Weights that got a LoRA adapter (empty for ft and lp). */
  adapted: z.array(z.object({ weight: z.string(), rank: z.number().int() })),
  featureDim: z.number().int(),
  numClasses: z.number().int(),
  /** Mean training loss of each epoch. */
  epochLoss: z.array(z.number()),
  trainRows: z.number().int(),
  testRows: z.number().int(),
  /**
   * The test set and every OOD target as a tuning fit reports them (accuracy, macro-F1, SVE
   * and LSVR of the tuned features Z and of the pre-trained backbone's F, reference
   * preprocessing and raw), under TuneRunResult's names, so white-box fits compare with
   * black-box ones.
   */
  test: EvalResult,
  targets: z.array(EvalResult),
  /** Mean accuracy and mean LSVR of Z over the OOD targets; null without targets. */
  oodAccuracy: z.number().nullable(),
  oodLsvr: z.number().nullable(),
  /** SVE of F on the test set; LSVR of F averaged over the targets where there are targets, else on the test set. */
  backboneSve: z.number(),
  backboneLsvr: z.number(),
  /** Downstream label noise η drawn on the training labels (a study's fit with η > 0). */
  downstreamNoise: DownstreamNoiseResult.optional(),
});
export type FinetuneResult = z.infer<typeof FinetuneResult>;
