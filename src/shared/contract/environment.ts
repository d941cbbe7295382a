import { z } from 'zod';

export const BackendProbe = z.object({
  name: z.string(),
  loaded: z.boolean(),
  /** Why it did not load, or notes such as "SIMD on, 1 thread". */
  detail: z.string(),
});

export const EnvironmentReport = z.object({
  platform: z.string(),
  arch: z.string(),
  cpus: z.number().int(),
  cpuModel: z.string(),
  totalMemoryGiB: z.number(),
  versions: z.object({
    node: z.string(),
    electron: z.string().nullable(),
    chrome: z.string().nullable(),
    nmlab: z.string(),
    tfjs: z.string(),
    onnxruntime: z.string().nullable(),
  }),
  tfjs: z.object({
    backends: z.array(BackendProbe),
    chosen: z.string(),
    /** Set by NMLAB_TF_BACKEND when the user forces one. */
    forced: z.string().nullable(),
  }),
  onnxruntime: z.object({
    loaded: z.boolean(),
    detail: z.string(),
    executionProviders: z.array(z.object({ name: z.string(), bundled: z.boolean() })),
  }),
  matmul: z.object({
    backend: z.string(),
    size: z.number().int(),
    /** Wall time of the timed repetitions together (warm-up excluded). */
    seconds: z.number(),
    /** repetitions · 2·size³ / seconds / 1e9. */
    gflops: z.number(),
    repetitions: z.number().int().optional(),
    /** Largest |error| of checked output entries against a float64 dot product in JS. */
    maxAbsError: z.number().optional(),
  }),
  measuredAt: z.string(),
});
export type EnvironmentReport = z.infer<typeof EnvironmentReport>;
