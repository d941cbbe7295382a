import { z } from 'zod';

/**
 * The app's "Open demo project": `nmlab demo` as a job (src/core/jobs/kinds/demo.ts). It runs
 * (or resumes) the paper's noise study on the embedded Fashion-MNIST subset into a project
 * folder; a folder that already holds the results of the same preset is returned at once.
 */
export const DemoJobSpec = z.object({
  kind: z.literal('demo'),
  /** Project folder; default `<NMLAB_HOME>/demo-project`. New, empty, or an earlier demo project. */
  dir: z.string().trim().min(1).optional(),
  /** Tiny sizes (seconds, for tests; results are not meaningful). NMLAB_DEMO_QUICK=1 forces it. */
  quick: z.boolean().default(false),
  /** Backbones pre-trained at once, one nested worker process each (default min(2, cores)). */
  workers: z.number().int().min(1).max(64).optional(),
});
export type DemoJobSpec = z.infer<typeof DemoJobSpec>;

/** What a finished demo job returns; the UI opens `dir`. */
export const DemoJobResult = z.object({
  /** Absolute project folder. */
  dir: z.string(),
  preset: z.enum(['standard', 'full', 'quick']),
  /** The folder already held this preset's results; nothing ran. */
  reused: z.boolean(),
  /** Absolute path of results/demo-results.json. */
  resultsFile: z.string(),
  /** Wall seconds of the study as recorded in its results (0 when reused). */
  wallSeconds: z.number(),
});
export type DemoJobResult = z.infer<typeof DemoJobResult>;
