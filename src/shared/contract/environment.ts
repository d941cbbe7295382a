import { z } from 'zod';

export const BackendProbe = z.object({
  name: z.string(),
  loaded: z.boolean(),
  /** Why it did not load, or notes such as "SIMD on, 1 thread". */
  detail: z.string(),
});

/**
 * onnxruntime execution providers NMLab chooses among (ORT's own names): CUDA (Linux x64, with
 * the optional CUDA binaries), DirectML (Windows), CoreML (macOS), WebGPU (experimental), CPU.
 * `NMLAB_EP` forces one of these.
 */
export const ExecutionProviderName = z.enum(['cuda', 'dml', 'coreml', 'webgpu', 'cpu']);
export type ExecutionProviderName = z.infer<typeof ExecutionProviderName>;

/** Whether one provider works here: a probe session ran and gave the right product, or why not. */
export const ProviderProbe = z.object({
  name: ExecutionProviderName,
  available: z.boolean(),
  detail: z.string(),
});
export type ProviderProbe = z.infer<typeof ProviderProbe>;

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
    /** NMLab's candidates for this platform, each probed, with a measured MatMul rate where available. */
    providers: z.array(
      ProviderProbe.extend({
        /** float32 MatMul chain on this provider, inputs copied in and out each run; null where unavailable. */
        gflops: z.number().nullable(),
      }),
    ),
    /** The provider every ORT session (inference and training) uses, and whether NMLAB_EP forced it. */
    chosen: ExecutionProviderName,
    forced: z.boolean(),
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
