/**
 * `nmlab demo`, NMLab's main job: the paper's noise study (§4–§6) at small scale, as a built-in
 * study run by the same queue as every other (src/core/experiments), in a project that records
 * every step and resumes where it stopped.
 *
 *   datasets  the embedded Fashion-MNIST subset, its pre-training and downstream class subsets
 *             and the OOD corruption domains of the downstream test images (./data.ts), made
 *             here before the study is written (its spec names them by id)
 *   study     `demo-<config hash>`: the pre-training axis (noisy labels per γ, one CNN per γ,
 *             ONNX export), features, spectra, LP / MLP / NMTune (paper preset) fitted once on
 *             the downstream training set and evaluated on the ID test set and every domain
 *   results   results/demo-results.json, .csv, four SVG charts and the table, read from the
 *             study's runs
 *
 * Its runs are the study's runs: Experiments, the runs table and Compare show them like any
 * other. See docs/demo.md for the protocol and its timings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { ExperimentDetail, ExperimentEvent } from '../../shared/contract/experiments';
import type { StudySpecInput } from '../../shared/contract/study';
import type { Claim } from '../../shared/contract/compare';
import { TuneRunResult } from '../../shared/contract/tuning';
import { NmlabError } from '../../shared/errors';
import type { ExperimentService } from '../experiments/service';
import { listExperimentIds } from '../experiments/store';
import { readBackboneManifest } from '../features/backbone';
import { writeJsonAtomic } from '../fs/atomic';
import { appVersion } from '../paths';
import type { PretrainProvenance } from '../pretrain/backbone';
import { MANIFEST_FILE, ProjectService } from '../projects';
import { RESULT_FILE } from '../runs/layout';
import { readRunJson, runDir } from '../runs/files';
import { hashOf, pct } from '../experiments/graph';
import { FASHION_CLASSES, type DemoConfig } from './config';
import { demoSource, fitConfigToSource, prepareDatasets, type DemoDatasetIds } from './data';
import { formatDuration, type DemoStatus, type ProgressSink } from './progress';
import { DemoResults, aggregateSeeds, demoCharts, formatTable, resultsCsv, summarize, type DemoBackbone, type DemoSeedRow } from './results';

export interface DemoOptions {
  /** Project folder: created when new or empty, resumed when it is an NMLab project. */
  dir: string;
  config: DemoConfig;
  /** The queue that runs the study (the caller's backend; its concurrency is the demo's workers). */
  experiments: ExperimentService;
  /** The embedded data (default resources/demo/fashion-mnist). */
  dataDir?: string;
  /** Per-user folder for the recent-projects list (default nmlabHome()). */
  home?: string;
  progress: ProgressSink;
  /** Structured progress on every queue change, besides the text lines. */
  onStatus?: (s: DemoStatus) => void;
  signal?: AbortSignal;
}

export interface DemoOutcome {
  results: DemoResults;
  /** The verdict on each of the paper's claims, from the study's comparison (its intervals). */
  claims: Claim[];
  table: string;
  resultsDir: string;
  experimentId: string;
}

const RESULTS_FOLDER = 'results';

/** The study id of a demo config: the same settings always resume the same study. */
export function demoStudyId(cfg: DemoConfig): string {
  return `demo-${cfg.preset}-${hashOf(cfg).slice(0, 8)}`;
}

/** The demo as a study spec on its datasets. */
export function demoSpec(cfg: DemoConfig, ids: DemoDatasetIds): StudySpecInput {
  const domains = cfg.corruptions.map((c) => c.name);
  return {
    name: `NMLab demo (${cfg.preset})`,
    layout: 'noise-study',
    pretrain: {
      dataset: ids.pretrain,
      noise: { type: 'symmetric', seed: cfg.noiseSeed },
      gammas: cfg.gammas,
      seeds: cfg.pretrainSeeds,
      architecture: cfg.arch,
      recipe: cfg.pretrainHyper,
    },
    tasks: [{ id: 'id', dataset: ids.downstream, train: 'train', test: 'test' }],
    ood: [{ id: 'ood', source: 'id', targets: domains.map((d) => ({ dataset: ids.ood, split: 'all', domain: d, name: d })) }],
    methods: cfg.methods.map((m) => ({ method: m, preset: 'paper' })),
    seeds: cfg.tuneSeeds,
    defaults: { epochs: cfg.tuneEpochs, batchSize: cfg.tuneBatchSize },
  };
}

/** Open the project at `dir`, or create it when the folder is new or empty. */
async function openProject(dir: string, home: string | undefined): Promise<string> {
  const svc = new ProjectService(home ? { home } : {});
  const abs = resolve(dir);
  if (existsSync(join(abs, MANIFEST_FILE))) return (await svc.open(abs)).dir;
  return (await svc.create(abs, 'NMLab demo')).dir;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU seconds of the worker processes this one has started and reaped (Linux: cutime + cstime
 * of /proc/self/stat, in clock ticks of 1/100 s); 0 where that is not available.
 */
function childCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return 0;
  }
}

/** Text lines for the terminal and structured status for the app, from the queue's events. */
function reporter(opts: DemoOptions, id: string, reusedAtStart: number): (e: ExperimentEvent) => void {
  const t0 = performance.now();
  const seen = new Map<string, string>();
  let lastLine = 0;
  return (e) => {
    if (e.type !== 'queue' || e.experimentId !== id) return;
    const c = e.summary.counts;
    const done = c.succeeded;
    const total = e.summary.total;
    const eta = e.summary.etaSeconds ?? 0;
    const elapsed = (performance.now() - t0) / 1000;
    let label = '';
    let ended = false;
    for (const j of e.jobs) {
      const before = seen.get(j.key);
      seen.set(j.key, j.state);
      if (before === undefined || before === j.state) continue;
      if (j.state === 'succeeded') {
        ended = true;
        label = j.title;
        opts.progress.write(`✓ ${j.title}  [${done}/${total}, elapsed ${formatDuration(elapsed)}, ETA ${formatDuration(eta)}]\n`);
      } else if (j.state === 'running') label = j.title;
      else if (j.state === 'failed') opts.progress.write(`✗ ${j.title}: ${j.error ?? 'failed'}\n`);
    }
    if (!ended && performance.now() - lastLine > 2000 && c.running > 0) {
      lastLine = performance.now();
      const running = e.jobs.filter((j) => j.state === 'running').map((j) => `${j.title}${j.progress ? ` ${Math.round((100 * j.progress.done) / Math.max(1, j.progress.total))}%` : ''}`);
      opts.progress.write(`… ${running.join('; ')}  [${done}/${total}, ETA ${formatDuration(eta)}]\n`);
    }
    opts.onStatus?.({ done, total, reused: reusedAtStart, label, ended, elapsedSeconds: elapsed, etaSeconds: eta });
  };
}

/** The failed (or not run) jobs of a study, one line each. */
function failures(d: ExperimentDetail): string {
  return d.jobs
    .filter((j) => j.state !== 'succeeded')
    .slice(0, 8)
    .map((j) => `${j.title}: ${j.state}${j.error ? ` (${j.error})` : ''}`)
    .join('; ');
}

async function tuneResult(projectDir: string, runId: string): Promise<TuneRunResult> {
  const r = await readRunJson(join(await runDir(projectDir, runId), RESULT_FILE), TuneRunResult, 'tuning result');
  if (!r) throw new NmlabError('BAD_FILE', `run ${runId} has no result.json; resume the demo to recompute it`);
  return r;
}

/** Run (or resume) the demo study; returns the results, the printed table and where they are. */
export async function runDemo(opts: DemoOptions): Promise<DemoOutcome> {
  const source = demoSource(opts.dataDir);
  const { config: cfg, note } = fitConfigToSource(opts.config, source);
  if (note) opts.progress.write(`note: ${note}\n`);
  const t0 = performance.now();
  const cpu0 = cpuSeconds() + childCpuSeconds();
  const projectDir = await openProject(opts.dir, opts.home);
  const service = opts.experiments;
  const ids = await prepareDatasets(projectDir, cfg, source);
  opts.progress.write(`datasets ready: ${ids.pretrain} (pre-training), ${ids.downstream} (downstream), ${ids.ood} (OOD domains)\n`);
  if (opts.signal?.aborted) throw new NmlabError('CANCELLED', 'the demo was stopped before its study started; run it again to resume');

  const id = demoStudyId(cfg);
  const exists = (await listExperimentIds(projectDir)).includes(id);
  const before = exists ? await service.get(projectDir, id) : await service.create(projectDir, demoSpec(cfg, ids), id);
  const reused = new Set(before.jobs.filter((j) => j.state === 'succeeded').map((j) => j.key));
  if (reused.size) opts.progress.write(`${reused.size} of ${before.jobs.length} jobs done earlier, reused\n`);
  const stop = service.onEvent(reporter(opts, id, reused.size));
  const cancel = () => void service.cancel(projectDir, id).catch(() => undefined);
  opts.signal?.addEventListener('abort', cancel);
  let d: ExperimentDetail;
  try {
    // Every job that did not succeed (interrupted, cancelled, failed) goes back in the queue.
    await (exists ? service.retry(projectDir, id) : service.start(projectDir, id));
    await service.waitIdle(projectDir, id);
    d = await service.get(projectDir, id);
  } finally {
    opts.signal?.removeEventListener('abort', cancel);
    stop();
  }
  if (d.summary.counts.succeeded !== d.summary.total) {
    if (opts.signal?.aborted) throw new NmlabError('CANCELLED', `the demo was stopped (${d.summary.counts.succeeded} of ${d.summary.total} jobs done); run it again to resume`);
    throw new NmlabError('JOB_FAILED', `the demo study ${id} did not finish: ${failures(d)}; run it again to retry, logs in runs/<run>/log.txt`);
  }

  // The paper's claims, read from the study's comparison (replicates are the unit, tuning seeds nested).
  const { claims } = await service.compare(projectDir, id);

  // Results from the study's runs.
  const seedRows: DemoSeedRow[] = [];
  const backbones: DemoBackbone[] = [];
  const timings: DemoResults['timing']['stages'] = [];
  let tfBackend: string | null = null;
  for (const j of d.jobs) {
    const seconds = j.startedAt && j.endedAt ? (Date.parse(j.endedAt) - Date.parse(j.startedAt)) / 1000 : 0;
    timings.push({ kind: j.stage, label: j.title, seconds, cpuSeconds: null, reused: reused.has(j.key), runId: j.runId! });
    if (j.stage === 'pretrain') {
      const m = await readBackboneManifest(join(projectDir, 'backbones', j.backbone, 'backbone.json'));
      const p = m.provenance as PretrainProvenance | undefined;
      if (!p) throw new NmlabError('BAD_FILE', `backbone ${j.backbone} has no pre-training provenance`);
      tfBackend = tfBackend ?? p.backend;
      backbones.push({
        gamma: j.gamma,
        id: j.backbone,
        dir: `backbones/${j.backbone}`,
        sha256: m.sha256,
        noisyDataset: j.noisyDataset,
        flippedCount: p.flippedCount,
        trainCount: p.trainCount,
        pretrainTestAccuracy: p.testAcc ?? null,
        trainAccuracyClean: p.trainAccClean,
        trainAccuracyNoisy: p.trainAccNoisy,
        replicate: j.seed,
        memorised: p.memorised ?? null,
        epochs: p.epochs,
        seconds: p.seconds,
        backend: p.backend,
      });
    }
    if (j.stage !== 'tune') continue;
    const method = j.method;
    if (method !== 'lp' && method !== 'mlp' && method !== 'nmtune') throw new NmlabError('INTERNAL', `the demo tunes with lp, mlp and nmtune, not ${method}`);
    const r = await tuneResult(projectDir, j.runId!);
    const evals = [...(r.test ? [{ domain: 'id', e: r.test }] : []), ...r.targets.map((e) => ({ domain: e.name, e }))];
    for (const { domain, e } of evals) {
      seedRows.push({
        gamma: j.gamma ?? 0,
        method,
        seed: j.seed,
        backbone: j.backbone,
        domain,
        kind: domain === 'id' ? 'id' : 'ood',
        rows: e.rows,
        accuracy: e.accuracy,
        macroF1: e.macroF1,
        featSve: e.backboneSve ?? NaN,
        featLsvr: e.backboneLsvr ?? NaN,
        zSve: e.sve,
        zLsvr: e.lsvr,
        featSveRaw: e.backboneSveRaw ?? NaN,
        featLsvrRaw: e.backboneLsvrRaw ?? NaN,
        zSveRaw: e.sveRaw ?? NaN,
        zLsvrRaw: e.lsvrRaw ?? NaN,
      });
    }
  }
  backbones.sort((a, b) => a.gamma - b.gamma);
  const order = (r: DemoSeedRow) => [cfg.gammas.indexOf(r.gamma), cfg.methods.indexOf(r.method), r.kind === 'id' ? -1 : cfg.corruptions.findIndex((c) => c.name === r.domain), cfg.tuneSeeds.indexOf(r.seed)];
  seedRows.sort((a, b) => {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  });

  const resultsDir = join(projectDir, RESULTS_FOLDER);
  await mkdir(resultsDir, { recursive: true });
  const rows = aggregateSeeds(seedRows);
  const summary = summarize(seedRows);
  const charts = demoCharts(summary, cfg.gammas);
  for (const [name, svg] of Object.entries(charts)) await writeFile(join(resultsDir, name), svg);
  await writeFile(join(resultsDir, 'demo-results.csv'), resultsCsv(rows));
  const results = DemoResults.parse({
    schemaVersion: 1,
    createdAt: new Date().toISOString(),
    tool: { name: 'nmlab', version: appVersion() },
    project: projectDir,
    preset: cfg.preset,
    config: { ...cfg },
    protocol: {
      pretrainClasses: cfg.pretrainClasses.map((c) => FASHION_CLASSES[c]),
      downstreamClasses: cfg.downstreamClasses.map((c) => FASHION_CLASSES[c]),
      idTest: 'clean held-out downstream images',
      oodSource: 'clean downstream training images (the ID training set)',
      oodTargets: cfg.corruptions.map((c) => c.name),
      datasets: { source: ids.source, pretrain: ids.pretrain, downstream: ids.downstream, ood: ids.ood, ...Object.fromEntries(backbones.map((b) => [`noisy-${pct(b.gamma)}`, b.noisyDataset])) },
      spectrumPreprocess: 'reference',
      study: id,
    },
    backend: { tf: tfBackend, features: 'onnxruntime-node' },
    timing: { wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds() + childCpuSeconds() - cpu0, loadAverage: loadavg(), cores: cpus().length, stages: timings },
    backbones,
    rows,
    seedRows,
    summary,
    claims,
    files: { json: `${RESULTS_FOLDER}/demo-results.json`, csv: `${RESULTS_FOLDER}/demo-results.csv`, charts: Object.keys(charts).map((n) => `${RESULTS_FOLDER}/${n}`) },
  });
  await writeJsonAtomic(join(resultsDir, 'demo-results.json'), results);
  return { results, claims, table: formatTable(summary), resultsDir, experimentId: id };
}
