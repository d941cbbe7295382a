import { z } from 'zod';
import { BackboneManifest, OnnxInspection, PreprocessSpec, ResolvedPreprocess } from './backbones';

/**
 * The app's view of backbones (issue 4, "In the app"): the model inspector, the import of an
 * `.onnx` with a chosen feature output and preprocessing, and the list with provenance. ONNX
 * files are opened with onnxruntime in a `backbone` job, never in the UI's process, so a
 * model that crashes the runtime takes only its worker down (DESIGN §2).
 */

const UserPath = z.string().trim().min(1, 'a path is required').max(4096);
const ProjectFolder = z.string().min(1).max(4096);

/** What the inspector shows: the model's interface plus what NMLab can infer from it. */
export const BackboneInspection = OnnxInspection.extend({
  /** Per output (same order): the feature width when its shape is static, else null. */
  featureDims: z.array(z.number().int().nullable()),
  /** Layout and input size read off the first input's shape, where it fixes them. */
  inferred: PreprocessSpec,
  /** Name for the backbone taken from the file. */
  suggestedId: z.string(),
});
export type BackboneInspection = z.infer<typeof BackboneInspection>;

const BackboneIdText = z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$/, 'a backbone id is arch or arch.tag (letters, digits, - and _)');

export const BackboneAction = z.discriminatedUnion('op', [
  z.object({ op: z.literal('inspect'), file: UserPath }),
  z.object({
    op: z.literal('import'),
    projectDir: ProjectFolder,
    file: UserPath,
    id: BackboneIdText.optional(),
    outputNode: z.string().min(1).optional(),
    preprocess: PreprocessSpec.default({}),
    license: z.string().max(200).optional(),
  }),
  /** Run the preprocessing (and a classifier output, if any) on a sample of an image dataset (issue 10 item 5). */
  z.object({
    op: z.literal('check'),
    projectDir: ProjectFolder,
    file: UserPath,
    dataset: z.string().min(1),
    outputNode: z.string().min(1).optional(),
    classifierNode: z.string().min(1).optional(),
    preprocess: PreprocessSpec.default({}),
    sample: z.number().int().min(1).max(4096).default(256),
  }),
]);
export type BackboneAction = z.infer<typeof BackboneAction>;

/** The `backbone` job: inspect an .onnx (result: BackboneInspection), import it (result: BackboneManifest) or check its preprocessing (result: PreprocessCheck). */
export const BackboneJobSpec = z.object({ kind: z.literal('backbone'), action: BackboneAction });
export type BackboneJobSpec = z.infer<typeof BackboneJobSpec>;

/** What a backbone's preprocessing does to a dataset sample, and how its classifier scores on it. */
export const PreprocessCheck = z.object({
  dataset: z.string(),
  rows: z.number().int(),
  /** Which rows were sampled: the test split, or all rows when the dataset has no split. */
  split: z.enum(['test', 'all']),
  preprocess: ResolvedPreprocess,
  /** Per channel of the model input: moments over every pixel of the sample. */
  channels: z.array(z.object({ mean: z.number(), std: z.number(), min: z.number(), max: z.number() })),
  /** Top-1 accuracy of a classification output as wide as the dataset's class count (null: none). */
  classifier: z.object({ node: z.string(), accuracy: z.number(), chance: z.number(), rows: z.number().int(), numClasses: z.number().int() }).nullable(),
  /** When the input is not normalised: this dataset's per-channel mean/std and the accuracy they give. */
  suggested: z.object({ mean: z.array(z.number()), std: z.array(z.number()), accuracy: z.number().nullable() }).nullable(),
  warnings: z.array(z.string()),
});
export type PreprocessCheck = z.infer<typeof PreprocessCheck>;

/** A feature file cached for a backbone (`features/<key>.npy`). */
export const CachedFeatures = z.object({
  key: z.string(),
  file: z.string(),
  dataset: z.string(),
  output: z.string(),
  count: z.number().int(),
  featureDim: z.number().int(),
  createdAt: z.string(),
  seconds: z.number(),
});
export type CachedFeatures = z.infer<typeof CachedFeatures>;

/** One backbone of a project, as the Backbones page lists it. */
export const BackboneEntry = z.object({
  /** Folder relative to the project (`backbones/<id>`). */
  dir: z.string(),
  manifest: BackboneManifest,
  /** Size of the model file in bytes (null when it is missing). */
  bytes: z.number().int().nullable(),
  features: z.array(CachedFeatures),
});
export type BackboneEntry = z.infer<typeof BackboneEntry>;

export const BackbonesListInput = z.object({ projectDir: ProjectFolder });
