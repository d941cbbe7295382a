import { z } from 'zod';
import { EnvironmentReport } from './environment';
import { PretrainJobSpec } from './pretrain';
import { FeaturesJobSpec } from './backbones';
import { TuneJobSpec } from './experiments';
import { DatasetJobSpec } from './datasetsService';
import { BackboneJobSpec } from './backbonesService';
import { DemoJobSpec } from './demo';
import { StudyJobSpec } from './study';

/**
 * A job is work that runs in a worker process. Each kind names its parameters here; the
 * worker answers with a typed stream of messages (STYLE.md convention 6).
 */
export const JobSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('doctor'), matmulSize: z.number().int().min(16).max(4096).default(512) }),
  /**
   * A diagnostic job that counts `steps` at `intervalMs`, reporting progress; with
   * `crashAt` it kills its own process at that step, so the crash path can be seen working.
   */
  z.object({
    kind: z.literal('selftest'),
    steps: z.number().int().min(1).max(100000).default(10),
    intervalMs: z.number().int().min(0).max(60000).default(50),
    crashAt: z.number().int().min(0).optional(),
  }),
  /** One tuning run of an experiment, written to the project's run store. */
  TuneJobSpec,
  /** One job of a study's graph (noise, pre-training, features, spectra, tuning, aggregation). */
  StudyJobSpec,
  /** Noisy pre-training of one CNN backbone (src/core/pretrain). */
  PretrainJobSpec,
  /** Feature extraction of a project dataset with an ONNX backbone (src/core/features). */
  FeaturesJobSpec,
  /** Import or derive a dataset of a project (the app's import wizard and dataset actions). */
  DatasetJobSpec,
  /** Inspect or import an ONNX backbone (the app's model inspector). */
  BackboneJobSpec,
  /** The demo study (`nmlab demo`) into a project folder: the app's "Open demo project". */
  DemoJobSpec,
]);
export type JobSpec = z.infer<typeof JobSpec>;
export type JobSpecInput = z.input<typeof JobSpec>;

export const JobState = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
export type JobState = z.infer<typeof JobState>;

export const Progress = z.object({
  done: z.number(),
  total: z.number(),
  /** Seconds until done, from the observed rate; null until it can be estimated. */
  etaSeconds: z.number().nullable(),
  message: z.string().optional(),
});
export type Progress = z.infer<typeof Progress>;

export const JobInfo = z.object({
  id: z.string(),
  spec: JobSpec,
  state: JobState,
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  progress: Progress.nullable(),
  result: z.unknown().optional(),
  error: z.object({ name: z.string(), code: z.string(), message: z.string() }).nullable(),
});
export type JobInfo = z.infer<typeof JobInfo>;

/** Results of job kinds whose results have a schema; the UI parses with these. */
export const JobResults = { doctor: EnvironmentReport } as const;

/** Everything a job tells its listeners, over every transport. */
export const JobEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('state'), job: JobInfo }),
  z.object({ type: z.literal('progress'), jobId: z.string(), progress: Progress }),
  z.object({ type: z.literal('metric'), jobId: z.string(), name: z.string(), step: z.number(), values: z.record(z.string(), z.number()) }),
  z.object({ type: z.literal('log'), jobId: z.string(), level: z.enum(['info', 'warn', 'error']), message: z.string() }),
]);
export type JobEvent = z.infer<typeof JobEvent>;
