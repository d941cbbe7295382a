import { z } from 'zod';
import { SlurmTaskView } from './executors';
import { FeatureSource, StudyJob, StudyLayout, StudySpec } from './study';
import { StoredTuneRunResult, TuneMethodName, TuneOverrides, TunePreset } from './tuning';

// The comparison's schema lives in ./compare (issue 10); re-exported for existing importers.
export { Stat, CompareRow, CompareResult, compareToCsv } from './compare';

/**
 * Experiments on disk and in the queue (DESIGN §1.2–1.3, §6): a study (./study.ts) once
 * written to `experiments/<id>/` — its spec and job graph (`experiment.json`), every job's
 * state (`queue.json`) — and the views the app, the CLI and reports read.
 */
export const EXPERIMENT_SCHEMA_VERSION = 2;

export const ExperimentId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,79}$/, 'an experiment id is lower-case letters, digits, - and _ (max 80)');

/**
 * The tune worker kind's input (src/core/jobs/kinds/tune.ts): one fit on feature files. A study's
 * `tune` jobs are turned into this until the tuning use case (`runTuneFit`) takes sets directly.
 */
export const ExperimentJob = z.object({
  key: z.string(),
  index: z.number().int().min(0),
  backbone: z.string(),
  gamma: z.number().nullable(),
  task: z.string(),
  taskType: z.enum(['id', 'ood']),
  /** The method's column label. */
  method: z.string(),
  baseMethod: TuneMethodName,
  preset: TunePreset,
  fraction: z.number(),
  seed: z.number().int(),
  params: TuneOverrides,
  train: FeatureSource,
  test: FeatureSource.nullable(),
  targets: z.array(FeatureSource.extend({ name: z.string() })),
});
export type ExperimentJob = z.infer<typeof ExperimentJob>;

export const QueueJobState = z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export type QueueJobState = z.infer<typeof QueueJobState>;

/** The queue's record of a job: persisted in `queue.json` on every change. */
export const QueueEntry = z.object({
  key: z.string(),
  state: QueueJobState,
  priority: z.number().int(),
  attempts: z.number().int().min(0),
  /** The run of the latest attempt, and every earlier one (interrupted runs stay on disk). */
  runId: z.string().nullable(),
  runIds: z.array(z.string()),
  error: z.string().nullable(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
});
export type QueueEntry = z.infer<typeof QueueEntry>;

/** `experiments/<id>/experiment.json`: the spec and its job graph, written once. */
export const ExperimentFile = z.object({
  schemaVersion: z.number().int().min(1),
  id: ExperimentId,
  createdAt: z.string(),
  spec: StudySpec,
  jobs: z.array(StudyJob),
});
export type ExperimentFile = z.infer<typeof ExperimentFile>;

/** `experiments/<id>/queue.json`: the state of every job. */
export const QueueFile = z.object({
  schemaVersion: z.number().int().min(1),
  updatedAt: z.string(),
  entries: z.array(QueueEntry),
});
export type QueueFile = z.infer<typeof QueueFile>;

/** Live progress of a running job (not persisted). */
export const LiveProgress = z.object({
  done: z.number(),
  total: z.number(),
  etaSeconds: z.number().nullable(),
  message: z.string().optional(),
});
export type LiveProgress = z.infer<typeof LiveProgress>;

export const QueueCounts = z.record(QueueJobState, z.number().int().min(0));
export type QueueCounts = z.infer<typeof QueueCounts>;

export const ExperimentSummary = z.object({
  id: ExperimentId,
  name: z.string(),
  layout: StudyLayout,
  createdAt: z.string(),
  total: z.number().int(),
  counts: QueueCounts,
  /** Whether a queue in this process is running it now. */
  active: z.boolean(),
  /** Seconds until every job that can still run is done: the queue's schedule of the job graph (src/core/experiments/eta.ts); null when no queue here runs it. */
  etaSeconds: z.number().nullable(),
});
export type ExperimentSummary = z.infer<typeof ExperimentSummary>;

/** A graph job with its queue state and live progress. */
export const ExperimentJobView = StudyJob.and(
  // `slurm`: the job's Slurm task when the study runs on Slurm (docs/slurm.md).
  QueueEntry.omit({ key: true }).extend({ progress: LiveProgress.nullable(), slurm: SlurmTaskView.nullable().optional() }),
);
export type ExperimentJobView = z.infer<typeof ExperimentJobView>;

export const ExperimentDetail = z.object({
  summary: ExperimentSummary,
  spec: StudySpec,
  jobs: z.array(ExperimentJobView),
  concurrency: z.number().int().min(1),
});
export type ExperimentDetail = z.infer<typeof ExperimentDetail>;

/** Run statuses on disk; `interrupted` is a run whose process died (or was killed) mid-way. */
export const RunStatus = z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export type RunStatus = z.infer<typeof RunStatus>;

export const RunSummary = z.object({
  id: z.string(),
  status: RunStatus,
  kind: z.string(),
  experimentId: z.string().nullable(),
  jobKey: z.string().nullable(),
  attempt: z.number().int().min(1),
  createdAt: z.string(),
  endedAt: z.string().nullable(),
  error: z.string().nullable(),
  /** Headline numbers, when finished. */
  accuracy: z.number().nullable(),
  oodAccuracy: z.number().nullable(),
});
export type RunSummary = z.infer<typeof RunSummary>;

/** One line of `metrics.jsonl`: a point of a named series (loss per step, accuracy per epoch, a spectrum). */
export const MetricPoint = z.object({
  series: z.string(),
  step: z.number(),
  values: z.record(z.string(), z.number()),
});
export type MetricPoint = z.infer<typeof MetricPoint>;

export const RunDetail = z.object({
  summary: RunSummary,
  config: z.record(z.string(), z.unknown()),
  /** A tuning run's result (./tuning.ts; old-shape results upgraded); null for other kinds and unfinished runs. */
  result: StoredTuneRunResult.nullable(),
  /** Why a tuning result that is there could not be read (names the file and the problem); null otherwise. */
  resultError: z.string().nullable(),
  /** Every point, in order; long loss series are thinned to at most `maxPoints` per series. */
  metrics: z.array(MetricPoint),
  /** The last 64 KiB of `log.txt`. */
  log: z.string(),
});
export type RunDetail = z.infer<typeof RunDetail>;

export const ProjectDir = z.string().min(1).max(4096);

/** Pushed while experiments run; `live` events are coalesced per job (at most ~10 a second). */
export const ExperimentEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('queue'), projectDir: z.string(), experimentId: z.string(), summary: ExperimentSummary, jobs: z.array(ExperimentJobView) }),
  z.object({
    type: z.literal('live'),
    projectDir: z.string(),
    experimentId: z.string(),
    key: z.string(),
    runId: z.string().nullable(),
    progress: LiveProgress.nullable(),
    /** New points since the previous `live` event of this job, in order. */
    points: z.array(MetricPoint),
  }),
]);
export type ExperimentEvent = z.infer<typeof ExperimentEvent>;

/** The worker job that runs one experiment job as a run in the project (`src/core/jobs/kinds/tune.ts`). */
export const TuneJobSpec = z.object({
  kind: z.literal('tune'),
  projectDir: z.string().min(1),
  runId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$/),
  experimentId: z.string().nullable().default(null),
  attempt: z.number().int().min(1).default(1),
  job: ExperimentJob,
});
export type TuneJobSpec = z.infer<typeof TuneJobSpec>;
