/**
 * The lab backend: every method of the API contract, implemented once over the project
 * service and the job runner. Electron IPC (src/main), the WebSocket server (src/server) and
 * direct calls (CLI, tests) all wrap this same object (DESIGN §2, STYLE.md convention 3).
 */
import {
  contract,
  dispatch,
  makeClient,
  EnvironmentReport,
  type EventName,
  type EventPayload,
  type LabApi,
  type LabHandlers,
} from '../shared/contract/index';
import { availableParallelism } from 'node:os';
import { ProjectService } from './projects/service';
import { JobRunner } from './jobs/runner';
import type { WorkerLauncher } from './jobs/launcher';
import { nmlabHome } from './paths';
import { ExperimentService } from './experiments/service';
import { adoptSlurm, slurmQueue } from './executors/slurm';
import { listRuns, readRunDetail } from './runs/store';
import { describeDataset, previewImport } from './backend/datasets';
import { listBackbones } from './backend/backbones';
import { listDatasets } from './datasets/store';
import { gatherReport } from './reports/gather';
import { exportReport, type ReportPrinter } from './reports/export';
import { NmlabError } from '../shared/errors';

export interface LabBackendOptions {
  /** Per-user folder (recent projects); `nmlabHome()` by default. */
  home?: string;
  /** Starts job workers; child_process.fork by default, utilityProcess in Electron. */
  launcher?: WorkerLauncher;
  /** Worker script; resolved by `resolveWorkerEntry()` by default. */
  workerEntry?: string;
  /** Jobs running at once (default 2). */
  maxConcurrentJobs?: number;
  /** Experiment jobs running at once (default cores − 1, at least 1). */
  experimentConcurrency?: number;
}

export interface LabBackend {
  /** One handler per contract method; inputs arrive validated. */
  handlers: LabHandlers;
  /** Subscribe to a push event stream; returns the unsubscribe function. */
  onEvent<E extends EventName>(name: E, cb: (p: EventPayload<E>) => void): () => void;
  /** Stop every job (workers killed) and release listeners. */
  dispose(): Promise<void>;
  /** The services underneath, for entry points that need more than the contract. */
  readonly projects: ProjectService;
  readonly jobs: JobRunner;
  readonly experiments: ExperimentService;
  /**
   * Set how `reports.exportPdf` prints: Electron's printToPDF in the app, headless Chromium in
   * browser mode. Without one, export answers UNSUPPORTED (the CLI prints by itself).
   */
  setReportPrinter(printer: ReportPrinter | null): void;
}

export function createLabBackend(opts: LabBackendOptions = {}): LabBackend {
  const projects = new ProjectService({ home: opts.home ?? nmlabHome() });
  const jobs = new JobRunner({ launcher: opts.launcher, entry: opts.workerEntry, maxConcurrent: opts.maxConcurrentJobs });
  // Experiment jobs get their own runner: the queue decides how many run at once, and their
  // raw per-step events stay off the `job` stream (the UI gets them coalesced as `experiment`).
  // Each runs with its share of the cores: N jobs at once on C cores get ⌊C/N⌋ onnxruntime
  // threads each, not C each (N·C threads fighting over C cores).
  const experimentJobs: JobRunner = new JobRunner({
    launcher: opts.launcher,
    entry: opts.workerEntry,
    maxConcurrent: 256,
    threadsPerJob: (): number => Math.max(1, Math.floor(availableParallelism() / experiments.defaultConcurrency)),
  });
  const experiments = new ExperimentService({ runner: experimentJobs, concurrency: opts.experimentConcurrency, external: slurmQueue });
  let lastReport: EnvironmentReport | null = null;
  let reportPrinter: ReportPrinter | null = null;

  const listeners: { [E in EventName]: Set<(p: EventPayload<E>) => void> } = { job: new Set(), experiment: new Set() };
  const stopExperimentEvents = experiments.onEvent((e) => {
    for (const cb of listeners.experiment) {
      try {
        cb(e);
      } catch {
        // One transport's broken listener must not starve the others.
      }
    }
  });
  const stopRunnerEvents = jobs.onEvent((e) => {
    // The Environment page shows the latest successful doctor run.
    if (e.type === 'state' && e.job.state === 'succeeded' && e.job.spec.kind === 'doctor') {
      const parsed = EnvironmentReport.safeParse(e.job.result);
      if (parsed.success) lastReport = parsed.data;
    }
    for (const cb of listeners.job) {
      try {
        cb(e);
      } catch {
        // One transport's broken listener must not starve the others.
      }
    }
  });

  const handlers: LabHandlers = {
    projects: {
      create: ({ dir, name }) => projects.create(dir, name),
      open: ({ dir }) => projects.open(dir),
      listRecent: () => projects.listRecent(),
      rename: ({ dir, name }) => projects.rename(dir, name),
      close: ({ dir }) => projects.close(dir),
      forget: ({ dir }) => projects.forget(dir),
      current: async () => projects.current(),
    },
    env: {
      lastReport: async () => lastReport,
    },
    jobs: {
      start: async ({ spec }) => jobs.start(spec),
      cancel: async ({ id }) => jobs.cancel(id),
      get: async ({ id }) => jobs.get(id),
      list: async () => jobs.list(),
    },
    experiments: {
      plan: ({ projectDir, spec }) => experiments.plan(projectDir, spec),
      list: ({ projectDir }) => experiments.list(projectDir),
      get: ({ projectDir, id }) => experiments.get(projectDir, id),
      create: async ({ projectDir, spec, id, start, concurrency, executor }) => {
        const created = await experiments.create(projectDir, spec, id);
        // A Slurm study's queue is Slurm's from the start (docs/slurm.md).
        if (executor?.name === 'slurm') await adoptSlurm(projectDir, created.summary.id, executor.profile);
        return start ? experiments.start(projectDir, created.summary.id, { concurrency }) : created;
      },
      start: ({ projectDir, id, concurrency }) => experiments.start(projectDir, id, { concurrency }),
      resume: ({ projectDir, id, concurrency }) => experiments.resume(projectDir, id, { concurrency }),
      cancel: ({ projectDir, id, key }) => experiments.cancel(projectDir, id, key),
      retry: ({ projectDir, id, keys }) => experiments.retry(projectDir, id, keys),
      setPriority: ({ projectDir, id, key, priority }) => experiments.setPriority(projectDir, id, key, priority),
      compare: ({ projectDir, id }) => experiments.compare(projectDir, id),
    },
    reports: {
      get: (query) => gatherReport(query, { doctor: lastReport }),
      exportPdf: async (input) => {
        if (!reportPrinter) throw new NmlabError('UNSUPPORTED', 'PDF export needs the desktop app or browser mode (`nmlab serve`); from a terminal use `nmlab report --project DIR --out R.pdf`');
        return exportReport(input, reportPrinter);
      },
    },
    runs: {
      list: ({ projectDir, experimentId }) => listRuns(projectDir, experimentId),
      get: ({ projectDir, id }) => readRunDetail(projectDir, id),
    },
    datasets: {
      list: ({ projectDir }) => listDatasets(projectDir),
      get: ({ projectDir, id, perCell }) => describeDataset(projectDir, id, perCell),
      preview: ({ source, perCell }) => previewImport(source, perCell),
    },
    backbones: {
      list: ({ projectDir }) => listBackbones(projectDir),
    },
  };

  return {
    handlers,
    projects,
    jobs,
    experiments,
    setReportPrinter(printer) {
      reportPrinter = printer;
    },
    onEvent(name, cb) {
      const set = listeners[name];
      set.add(cb);
      return () => set.delete(cb);
    },
    async dispose() {
      await experiments.dispose();
      await Promise.all([jobs.dispose(), experimentJobs.dispose()]);
      stopRunnerEvents();
      stopExperimentEvents();
      for (const set of Object.values(listeners)) set.clear();
    },
  };
}

/** A typed client that calls the backend in-process, with the same validation as every transport. */
export function createDirectClient(backend: Pick<LabBackend, 'handlers'>): LabApi {
  return makeClient(contract, (channel, payload) => dispatch(contract, backend.handlers, channel, payload));
}
