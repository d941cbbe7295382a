import { z } from 'zod';
import { BackboneManifest, OnnxInspection, PreprocessSpec } from './backbones';

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
]);
export type BackboneAction = z.infer<typeof BackboneAction>;

/** The `backbone` job: inspect an .onnx (result: BackboneInspection) or import it (result: BackboneManifest). */
export const BackboneJobSpec = z.object({ kind: z.literal('backbone'), action: BackboneAction });
export type BackboneJobSpec = z.infer<typeof BackboneJobSpec>;

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
