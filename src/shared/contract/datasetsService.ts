import { z } from 'zod';
import { CorruptionSpec, DatasetId, DatasetManifest, DatasetSummary } from './datasets';
import { asymmetricNoiseProblem, ClassIndex, ClassMap } from './labelNoise';

/**
 * The app's view of datasets (issue 4, "In the app"): what the import wizard previews before
 * anything is written, what the detail page shows, and the `dataset` job that imports or
 * derives a dataset in a worker (DESIGN §2: heavy work never on the main thread).
 */

/** A file or folder the user named (absolute, on the machine that runs the backend). */
const UserPath = z.string().trim().min(1, 'a path is required').max(4096);
const ProjectFolder = z.string().min(1).max(4096);

/** What to import: the three sources of `nmlab dataset import`. */
export const ImportSource = z.discriminatedUnion('type', [
  /** `dir/<class>/*.png|jpg` or `dir/<domain>/<class>/*`. */
  z.object({ type: z.literal('image-folder'), dir: UserPath }),
  /** An MNIST-style IDX pair, optionally with a test pair that becomes the test split. */
  z.object({
    type: z.literal('idx'),
    images: UserPath,
    labels: UserPath,
    testImages: UserPath.optional(),
    testLabels: UserPath.optional(),
  }),
  /** Features `.npy`/`.csv` with a labels `.npy`, or a CSV's label column. */
  z.object({
    type: z.literal('features'),
    features: UserPath,
    labels: UserPath.optional(),
    labelColumn: z.string().trim().min(1).max(200).optional(),
  }),
]);
export type ImportSource = z.infer<typeof ImportSource>;

/**
 * Sample images for a preview grid: for each (domain, class) cell up to `perCell` images, each
 * a small uint8 HWC thumbnail sent as base64 (the renderer draws it on a canvas).
 */
export const ThumbnailGrid = z.object({
  height: z.number().int().min(1),
  width: z.number().int().min(1),
  channels: z.union([z.literal(1), z.literal(3)]),
  /** Size of the stored images the thumbnails were made from. */
  sourceHeight: z.number().int().min(1),
  sourceWidth: z.number().int().min(1),
  cells: z.array(
    z.object({
      domain: z.number().int().min(0),
      label: z.number().int().min(0),
      /** base64 of height·width·channels bytes each. */
      images: z.array(z.string()),
      /** Dataset rows (or source file names) the thumbnails came from, for tooltips. */
      sources: z.array(z.string()),
    }),
  ),
});
export type ThumbnailGrid = z.infer<typeof ThumbnailGrid>;

/** What the wizard shows before importing: nothing has been written yet. */
export const DatasetPreview = z.object({
  source: ImportSource,
  kind: z.enum(['images', 'features']),
  classes: z.array(z.string()),
  domains: z.array(z.string()),
  count: z.number().int().min(0),
  /** Rows per class, over every split and domain. */
  classCounts: z.array(z.number().int().min(0)),
  /** Rows per (domain, class): `[domain][class]`. */
  domainClassCounts: z.array(z.array(z.number().int().min(0))),
  /** Rows per class in the given test split (IDX test pair); null when the source has none. */
  testClassCounts: z.array(z.number().int().min(0)).nullable(),
  image: z.object({ height: z.number().int(), width: z.number().int(), channels: z.number().int() }).nullable(),
  featureDim: z.number().int().nullable(),
  grid: ThumbnailGrid.nullable(),
  /** Things the import will do or skip (resized images, ignored files, …). */
  notes: z.array(z.string()),
  /** A name for the dataset taken from the source. */
  suggestedName: z.string(),
});
export type DatasetPreview = z.infer<typeof DatasetPreview>;

/** A dataset as the detail page shows it. */
export const DatasetDetail = z.object({
  manifest: DatasetManifest,
  /** Datasets derived from this one. */
  children: z.array(DatasetSummary),
  /** Rows per class in each split; `test` is null when the set has no split. */
  splitClassCounts: z.object({ train: z.array(z.number().int()), test: z.array(z.number().int()).nullable() }),
  domainClassCounts: z.array(z.array(z.number().int().min(0))),
  grid: ThumbnailGrid.nullable(),
  /** Noise sets: rows whose label was flipped, shown on the thumbnails (first few per cell). */
  flippedRows: z.array(z.number().int()).nullable(),
});
export type DatasetDetail = z.infer<typeof DatasetDetail>;

const OptionalDatasetId = DatasetId.optional();

/** What a `dataset` job does. Every op writes a new dataset and never edits another. */
export const DatasetAction = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('import'),
    source: ImportSource,
    name: z.string().trim().min(1, 'a dataset needs a name').max(200),
    id: OptionalDatasetId,
    /** Class names in label order; folder names or `class-<k>` when absent. */
    classes: z.array(z.string().trim().min(1).max(200)).optional(),
    /** A stratified test split (0 = none), unless the source gives one. */
    testFraction: z.number().min(0).lt(1).default(0),
    seed: z.number().int().min(0).default(0),
    /** Image folders: refuse images of another size instead of resizing them. */
    strictSize: z.boolean().default(false),
  }),
  z.object({
    op: z.literal('noise'),
    dataset: DatasetId,
    type: z.enum(['symmetric', 'asymmetric']),
    ratio: z.number().min(0).max(1),
    seed: z.number().int().min(0),
    split: z.enum(['train', 'all']).default('train'),
    /** Asymmetric only: the classes to corrupt (default: the map's source classes). */
    classes: z.array(ClassIndex).optional(),
    /** Asymmetric only: class → class its flipped rows get (paper §7.3). */
    map: ClassMap.optional(),
    id: OptionalDatasetId,
  }).superRefine((a, ctx) => {
    const p = a.type === 'asymmetric' ? asymmetricNoiseProblem(a.classes, a.map) : null;
    if (p) ctx.addIssue({ code: 'custom', path: [p.key], message: p.message });
  }),
  z.object({
    op: z.literal('corrupt'),
    dataset: DatasetId,
    corruptions: z.array(CorruptionSpec).min(1),
    seed: z.number().int().min(0),
    split: z.enum(['train', 'test', 'all']).default('test'),
    includeClean: z.boolean().default(true),
    id: OptionalDatasetId,
  }),
  z.object({
    op: z.literal('split'),
    dataset: DatasetId,
    testFraction: z.number().gt(0).lt(1),
    seed: z.number().int().min(0),
    id: OptionalDatasetId,
  }),
]);
export type DatasetAction = z.infer<typeof DatasetAction>;

/** The `dataset` job: import or derive one dataset in a worker; its result is the new manifest. */
export const DatasetJobSpec = z.object({
  kind: z.literal('dataset'),
  projectDir: ProjectFolder,
  action: DatasetAction,
});
export type DatasetJobSpec = z.infer<typeof DatasetJobSpec>;

/** Inputs of the `datasets` service methods. */
export const DatasetsListInput = z.object({ projectDir: ProjectFolder });
export const DatasetsGetInput = z.object({
  projectDir: ProjectFolder,
  id: DatasetId,
  /** Thumbnails per (domain, class) cell. */
  perCell: z.number().int().min(0).max(32).default(8),
});
export const DatasetsPreviewInput = z.object({ source: ImportSource, perCell: z.number().int().min(0).max(32).default(8) });
