/**
 * The API contract: every service, method and event NMLab exposes, typed once and validated
 * at runtime. Electron IPC, the WebSocket server and direct calls are all built from this.
 */
import { z } from 'zod';
import { method, type ClientOf, type HandlersOf } from './define';
import { ProjectInfo, ProjectName, RecentProject } from './projects';
import { EnvironmentReport } from './environment';
import { JobEvent, JobInfo, JobSpec } from './jobs';
import { DatasetDetail, DatasetPreview, DatasetsGetInput, DatasetsListInput, DatasetsPreviewInput } from './datasetsService';
import { DatasetSummary } from './datasets';
import { BackboneEntry, BackbonesListInput } from './backbonesService';
import {
  CompareResult,
  ExperimentDetail,
  ExperimentEvent,
  ExperimentId,
  ExperimentSummary,
  ProjectDir,
  RunDetail,
  RunSummary,
} from './experiments';
import { StudyPlan, StudySpec } from './study';
import { ExecutorChoice } from './executors';
import { ReportDocument, ReportExport, ReportExportInput, ReportQuery } from './reports';

export * from './define';
export * from './projects';
export * from './environment';
export * from './jobs';
export * from './experiments';
export * from './executors';
export * from './study';
export * from './datasets';
export * from './backbones';
export * from './pretrain';
export * from './datasetsService';
export * from './backbonesService';
export * from './reports';

const Dir = z.string().min(1, 'a folder path is required').max(4096);

export const contract = {
  projects: {
    /** Create a project in a new or empty folder and open it. */
    create: method(z.object({ dir: Dir, name: ProjectName }), ProjectInfo),
    /** Open an existing project folder (migrating its manifest if older). */
    open: method(z.object({ dir: Dir }), ProjectInfo),
    /** Recently opened projects, newest first. */
    listRecent: method(z.object({}).default({}), z.array(RecentProject)),
    rename: method(z.object({ dir: Dir, name: ProjectName }), ProjectInfo),
    /** Forget the open project in this session (the folder is untouched). */
    close: method(z.object({ dir: Dir }), z.object({ closed: z.boolean() })),
    /** Remove a project from the recent list (the folder is untouched). */
    forget: method(z.object({ dir: Dir }), z.object({ forgotten: z.boolean() })),
    current: method(z.object({}).default({}), ProjectInfo.nullable()),
  },
  env: {
    /** The last environment report, or null if doctor never ran in this session. */
    lastReport: method(z.object({}).default({}), EnvironmentReport.nullable()),
  },
  jobs: {
    start: method(z.object({ spec: JobSpec }), JobInfo),
    cancel: method(z.object({ id: z.string() }), JobInfo),
    get: method(z.object({ id: z.string() }), JobInfo),
    list: method(z.object({}).default({}), z.array(JobInfo)),
  },
  /** Experiments: study specs expanded into a job graph, a durable queue, comparisons (issues 5, 9). */
  experiments: {
    /**
     * Check a spec against the project and expand it without writing anything: the jobs per
     * stage and an estimated time (the builder's "before start"). Errors name the key and the fix.
     */
    plan: method(z.object({ projectDir: ProjectDir, spec: StudySpec }), StudyPlan),
    list: method(z.object({ projectDir: ProjectDir }), z.array(ExperimentSummary)),
    get: method(z.object({ projectDir: ProjectDir, id: ExperimentId }), ExperimentDetail),
    /** Write a new experiment (jobs pending); with `start` it begins running at once. */
    create: method(
      z.object({ projectDir: ProjectDir, spec: StudySpec, id: ExperimentId.optional(), start: z.boolean().default(false), concurrency: z.number().int().min(1).max(256).optional(), executor: ExecutorChoice.optional() }),
      ExperimentDetail,
    ),
    start: method(z.object({ projectDir: ProjectDir, id: ExperimentId, concurrency: z.number().int().min(1).max(256).optional() }), ExperimentDetail),
    /** Put interrupted and cancelled jobs back in the queue and run it. */
    resume: method(z.object({ projectDir: ProjectDir, id: ExperimentId, concurrency: z.number().int().min(1).max(256).optional() }), ExperimentDetail),
    /** Cancel one job (`key`) or the whole experiment. */
    cancel: method(z.object({ projectDir: ProjectDir, id: ExperimentId, key: z.string().optional() }), ExperimentDetail),
    /** Re-run the named jobs, or every failed, cancelled and interrupted one. */
    retry: method(z.object({ projectDir: ProjectDir, id: ExperimentId, keys: z.array(z.string()).optional() }), ExperimentDetail),
    setPriority: method(z.object({ projectDir: ProjectDir, id: ExperimentId, key: z.string(), priority: z.number().int().min(-1000).max(1000) }), ExperimentDetail),
    compare: method(z.object({ projectDir: ProjectDir, id: ExperimentId }), CompareResult),
  },
  /** Datasets of a project: list, detail with thumbnails, and the import wizard's preview (issue 4). */
  datasets: {
    list: method(DatasetsListInput, z.array(DatasetSummary)),
    get: method(DatasetsGetInput, DatasetDetail),
    /** Read an import source without writing anything: classes, counts, sample images. */
    preview: method(DatasetsPreviewInput, DatasetPreview),
  },
  /** Backbones of a project with their provenance and cached features (issue 4). */
  backbones: {
    list: method(BackbonesListInput, z.array(BackboneEntry)),
  },
  /** Reports (issue 6): one document per project or experiment; PDF export by the entry point's printer. */
  reports: {
    /** Gather the report's document (what the report route draws). */
    get: method(ReportQuery, ReportDocument),
    /** Print the report route to PDF and save it in the project's reports/ folder. */
    exportPdf: method(ReportExportInput, ReportExport),
  },
  runs: {
    list: method(z.object({ projectDir: ProjectDir, experimentId: z.string().optional() }), z.array(RunSummary)),
    get: method(z.object({ projectDir: ProjectDir, id: z.string().min(1).max(160) }), RunDetail),
  },
};

export type Contract = typeof contract;
export type LabApi = ClientOf<Contract>;
export type LabHandlers = HandlersOf<Contract>;

/** Push events from backend to UI. Channel names follow `nmlab:event.<name>`. */
export const events = {
  job: JobEvent,
  /** Queue changes and coalesced live metrics of experiment jobs. */
  experiment: ExperimentEvent,
};
export type EventName = keyof typeof events;
export type EventPayload<E extends EventName> = z.infer<(typeof events)[E]>;
export function eventChannel(name: EventName): string {
  return `nmlab:event.${name}`;
}
