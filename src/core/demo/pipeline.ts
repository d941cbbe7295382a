/**
 * `nmlab demo`, NMLab's main job: the paper's noise study (§4–§6) at small scale, end to end,
 * in a project that records every step and resumes where it stopped.
 *
 *   data      import the embedded Fashion-MNIST subset; cut the pre-training and downstream
 *             class subsets; derive the OOD corruption domains of the downstream test images
 *   per γ     pretrain  noisy labels as a derived dataset, one CNN pre-trained on them (tfjs),
 *                       exported to ONNX and saved as a backbone with its noise provenance
 *             features  ONNX features (onnxruntime-node, the path every imported model takes)
 *                       of the downstream set and the OOD domains, cached as .npy
 *             spectrum  SVE and LSVR of the features of every set (paper §5)
 *   per γ × method      LP, MLP, NMTune (paper preset) fitted on the downstream training set
 *             (the OOD source domain) and evaluated on the ID test set and on every target
 *             domain: accuracy, macro-F1, SVE/LSVR of the tuned features Z
 *   results   results/demo-results.json, .csv, four SVG charts, and the table
 *
 * Each stage is a run (src/core/runs) keyed by what it depends on (./stages.ts); the stages
 * run in order in this process. See docs/demo.md for the protocol and its timings.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { NmlabError } from '../../shared/errors';
import { readNpy } from '../arrays/npy';
import { loadDataset, type LoadedDataset } from '../datasets/store';
import { extractDatasetFeatures } from '../features/cache';
import { writeJsonAtomic } from '../fs/atomic';
import { appVersion } from '../paths';
import { backboneIdFor, type PretrainProvenance } from '../pretrain/backbone';
import { JobRunner } from '../jobs/runner';
import { readBackboneManifest } from '../features/backbone';
import { ProjectService, MANIFEST_FILE } from '../projects';
import { spectrumOfMatrix } from '../spectrum';
import type { SpectrumStats } from '../spectrum/stats';
import type { FeatureSet } from '../tuning/data';
import { accuracy, macroF1 } from '../tuning/metrics';
import { makeTuner, type TuneMethod } from '../tuning/tuner';
import type { Run } from '../runs/store';
import { FASHION_CLASSES, gammaPct, hashOf, type DemoConfig } from './config';
import { demoDatasetIds, prepareDatasets, prepareNoisy, type DemoDatasetIds } from './data';
import { ProgressReporter, type DemoStatus, type ProgressSink, type StagePlan } from './progress';
import { DemoResults, aggregateSeeds, demoCharts, formatTable, resultsCsv, summarize, type DemoBackbone, type DemoSeedRow } from './results';
import { StageRunner } from './stages';

export interface DemoOptions {
  /** Project folder: created when new or empty, resumed when it is an NMLab project. */
  dir: string;
  config: DemoConfig;
  /** The embedded data (default resources/demo/fashion-mnist). */
  dataDir?: string;
  /** Per-user folder for the recent-projects list (default nmlabHome()). */
  home?: string;
  progress: ProgressSink;
  /** Structured progress (every stage begin, update and end), besides the text lines. */
  onStatus?: (s: DemoStatus) => void;
  signal?: AbortSignal;
  /** Backbones pre-trained at once, each in its own worker process (default min(2, cores)). */
  workers?: number;
}

export interface DemoOutcome {
  results: DemoResults;
  table: string;
  resultsDir: string;
}

/** Spectrum summaries with both preprocessings. */
interface SpectrumPair {
  rows: number;
  none: SpectrumStats;
  reference: SpectrumStats;
}

interface PretrainStageResult extends DemoBackbone {
  backend: string;
}

interface FeaturesStageResult {
  downstream: { file: string; count: number; dim: number; cached: boolean };
  ood: { file: string; count: number; dim: number; cached: boolean };
  featureDim: number;
}

interface SpectrumStageResult {
  sets: Record<string, SpectrumPair>;
}

interface TuneStageResult {
  method: TuneMethod;
  params: Record<string, unknown>;
  trainRows: number;
  fitSeconds: number;
  backend: string | null;
  evals: Record<string, { rows: number; accuracy: number; macroF1: number; z: SpectrumPair }>;
}

const RESULTS_FOLDER = 'results';

/** Progress of one stage: fraction 0–1 and what it is doing. */
type Report = (fraction: number, detail: string) => void;

/**
 * Prior stage costs in seconds on one idle core (wasm), from the CPU time of the full demo's
 * stages (docs/demo.md); the ETA rescales them by the measured speed as stages finish.
 */
function estimates(cfg: DemoConfig): Record<string, number> {
  const imgs = cfg.pretrainClasses.length * cfg.pretrainPerClass * (cfg.pretrainHyper.epochs ?? 6);
  const rows = cfg.downstreamClasses.length * cfg.downstreamTrainPerClass * cfg.tuneEpochs;
  const images = cfg.downstreamClasses.length * (cfg.downstreamTrainPerClass + cfg.downstreamTestPerClass * (2 + cfg.corruptions.length));
  return {
    data: 2,
    pretrain: 5 + imgs / 900,
    features: 0.3 + images / 8000,
    spectrum: 0.2,
    'tune-lp': 0.3 + rows / 150000,
    'tune-mlp': 0.3 + rows / 80000,
    'tune-nmtune': 0.5 + rows / 36000,
  };
}

function parseAs<T>(check: (v: Record<string, unknown>) => boolean) {
  return (raw: unknown): T => {
    if (!raw || typeof raw !== 'object' || !check(raw as Record<string, unknown>)) throw new NmlabError('BAD_FILE', 'stored stage result has an unexpected shape');
    return raw as T;
  };
}

async function spectrumPair(data: Float32Array, rows: number, dim: number, name: string): Promise<SpectrumPair> {
  const none = await spectrumOfMatrix(data, rows, dim, name, { preprocess: 'none' });
  const reference = await spectrumOfMatrix(data, rows, dim, name, { preprocess: 'reference' });
  const pick = (s: SpectrumStats): SpectrumStats => ({ sve: s.sve, lsvr: s.lsvr, sigma1Share: s.sigma1Share, effectiveRank: s.effectiveRank });
  return { rows, none: pick(none), reference: pick(reference) };
}

/** Row-subsets of one γ's features: ID train/test and every OOD target domain. */
interface FeatureViews {
  train: FeatureSet;
  test: FeatureSet;
  targets: Array<{ name: string; set: FeatureSet }>;
}

function subsetRows(name: string, data: Float32Array, labels: Int32Array, dim: number, keep: (i: number) => boolean): FeatureSet {
  const rows: number[] = [];
  for (let i = 0; i < labels.length; i++) if (keep(i)) rows.push(i);
  const features = new Float32Array(rows.length * dim);
  rows.forEach((r, k) => features.set(data.subarray(r * dim, (r + 1) * dim), k * dim));
  return { features, labels: Int32Array.from(rows, (r) => labels[r]), rows: rows.length, dim, name };
}

async function featureViews(projectDir: string, feats: FeaturesStageResult, down: LoadedDataset, ood: LoadedDataset): Promise<FeatureViews> {
  const dArr = await readNpy(join(projectDir, feats.downstream.file));
  const oArr = await readNpy(join(projectDir, feats.ood.file));
  const dim = feats.featureDim;
  const dData = dArr.data as Float32Array;
  const oData = oArr.data as Float32Array;
  if (dData.length !== down.labels.length * dim || oData.length !== ood.labels.length * dim) {
    throw new NmlabError('BAD_FILE', `cached features ${feats.downstream.file} / ${feats.ood.file} do not match their datasets' row counts`);
  }
  const split = down.split!;
  const targets = ood.manifest.domains
    .map((name, k) => ({ name, k }))
    .filter((d) => d.name !== 'clean')
    .map(({ name, k }) => ({ name, set: subsetRows(`OOD ${name}`, oData, ood.labels, dim, (i) => ood.domains[i] === k) }));
  return {
    train: subsetRows('ID train', dData, down.labels, dim, (i) => split[i] === 0),
    test: subsetRows('ID test', dData, down.labels, dim, (i) => split[i] === 1),
    targets,
  };
}

/** Open the project at `dir`, or create it when the folder is new or empty. */
async function openProject(dir: string, home: string | undefined): Promise<string> {
  const svc = new ProjectService(home ? { home } : {});
  const abs = resolve(dir);
  if (existsSync(join(abs, MANIFEST_FILE))) return (await svc.open(abs)).dir;
  return (await svc.create(abs, 'NMLab demo')).dir;
}

/** A promise with its resolve function (idempotent). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
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
    // After "pid (comm) " come state (field 3) … cutime (field 16) and cstime (field 17).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return 0;
  }
}

/** Run (or resume) the demo study; returns the results, the printed table and where they are. */
export async function runDemo(opts: DemoOptions): Promise<DemoOutcome> {
  const cfg = opts.config;
  const t0 = performance.now();
  const cpu0 = cpuSeconds() + childCpuSeconds();
  const projectDir = await openProject(opts.dir, opts.home);
  const runner = await StageRunner.open(projectDir);
  const ids = demoDatasetIds(cfg);
  const est = estimates(cfg);
  const cfgHash = hashOf(cfg);
  const pretrainHash = hashOf({ p: ids.pretrain, seed: cfg.noiseSeed, s: cfg.pretrainSeed, h: cfg.pretrainHyper, a: cfg.arch });
  const backboneId = (g: number) => backboneIdFor(g, `demo-${pretrainHash.slice(0, 8)}`);

  const keys = {
    data: `demo.data:${ids.pretrain}:${ids.downstream}:${ids.ood}`,
    pretrain: (g: number) => `demo.pretrain:${pretrainHash}:${g}`,
    features: (g: number) => `demo.features:${pretrainHash}:${g}:${ids.downstream}:${ids.ood}`,
    spectrum: (g: number) => `demo.spectrum:${pretrainHash}:${g}:${ids.downstream}:${ids.ood}`,
    tune: (g: number, m: TuneMethod, seed: number) => `demo.tune:${pretrainHash}:${g}:${ids.downstream}:${ids.ood}:${m}:${seed}:${hashOf({ e: cfg.tuneEpochs, b: cfg.tuneBatchSize })}`,
  };
  const plan: StagePlan[] = [{ key: keys.data, kind: 'data', label: 'datasets', estimate: est.data }];
  for (const g of cfg.gammas) plan.push({ key: keys.pretrain(g), kind: 'pretrain', label: `pre-train γ=${gammaPct(g)}%`, estimate: est.pretrain });
  for (const g of cfg.gammas) {
    const gl = `γ=${gammaPct(g)}%`;
    plan.push({ key: keys.features(g), kind: 'features', label: `features ${gl}`, estimate: est.features });
    plan.push({ key: keys.spectrum(g), kind: 'spectrum', label: `spectra ${gl}`, estimate: est.spectrum });
    for (const m of cfg.methods) {
      for (const seed of cfg.tuneSeeds) plan.push({ key: keys.tune(g, m, seed), kind: `tune-${m}`, label: `tune ${m} ${gl} seed ${seed}`, estimate: est[`tune-${m}`] });
    }
  }
  for (const p of plan) p.done = runner.has(p.key);
  const workers = Math.max(1, Math.floor(opts.workers ?? Math.min(2, availableParallelism())));
  const progress = new ProgressReporter(plan, opts.progress, 2000, { pretrain: workers });
  progress.listener = opts.onStatus;
  const timings: DemoResults['timing']['stages'] = [];
  let tfBackend: string | null = null;

  /**
   * One stage as a run. `inWorker`: the work runs in a worker process, which calls
   * `progress.begin` itself once it actually starts (it may wait for a free worker), and whose
   * CPU time is not this process's.
   */
  const stage = async <T>(key: string, kind: string, config: Record<string, unknown>, fn: (run: Run, report: Report) => Promise<T>, parse: (raw: unknown) => T, inWorker = false): Promise<T> => {
    if (opts.signal?.aborted) throw new NmlabError('CANCELLED', `the demo was stopped before "${plan.find((p) => p.key === key)?.label}"; run it again to resume`);
    if (!inWorker || runner.has(key)) progress.begin(key);
    const c0 = cpuSeconds();
    const report: Report = (fraction, detail) => progress.update(fraction, detail, key);
    const out = await runner.stage(kind, key, { demo: { preset: cfg.preset, configHash: cfgHash }, ...config }, (run) => fn(run, report), parse);
    progress.end(out.reused, key);
    const cpu = out.reused ? 0 : inWorker ? null : cpuSeconds() - c0;
    timings.push({ kind, label: plan.find((p) => p.key === key)?.label ?? kind, seconds: out.seconds, cpuSeconds: cpu, reused: out.reused, runId: out.runId });
    return out.result;
  };

  // 1. Datasets.
  await stage(
    keys.data,
    'demo.data',
    { datasets: { ...ids, noisy: undefined } },
    async (run) => {
      await prepareDatasets(projectDir, cfg, opts.dataDir);
      await run.log(`datasets ready: ${ids.source}, ${ids.pretrain}, ${ids.downstream}, ${ids.ood}`);
      return { ...ids, noisy: undefined };
    },
    parseAs<Record<string, unknown>>((v) => typeof v.pretrain === 'string'),
  );
  const down = await loadDataset(projectDir, ids.downstream);
  const ood = await loadDataset(projectDir, ids.ood);

  // 2. Noisy labels and pre-training of every γ, `workers` backbones at a time, each in a
  // worker process (tfjs' wasm backend uses one core per process). Jobs start in γ order, and
  // the downstream stages of a γ (steps 3–5, in this process) run as soon as its backbone is
  // there, so they overlap the pre-training still going on.
  const jobs = new JobRunner({ maxConcurrent: workers });
  const cancelJobs = (): void => {
    for (const j of jobs.list()) jobs.cancel(j.id);
  };
  opts.signal?.addEventListener('abort', cancelJobs);
  const gates = cfg.gammas.map(() => deferred());
  const pretraining = cfg.gammas.map((g, gi) =>
    stage(
      keys.pretrain(g),
      'demo.pretrain',
      { gamma: g, noise: { type: 'symmetric', ratio: g, seed: cfg.noiseSeed }, dataset: ids.noisy(g), hyper: cfg.pretrainHyper, arch: cfg.arch, seed: cfg.pretrainSeed },
      (run) => pretrainStage(jobs, projectDir, cfg, ids, g, backboneId(g), run, progress, keys.pretrain(g), gi > 0 ? gates[gi - 1].promise : Promise.resolve(), gates[gi].resolve),
      parseAs<PretrainStageResult>((v) => typeof v.sha256 === 'string' && typeof v.id === 'string'),
      true,
    ).finally(gates[gi].resolve),
  );
  // Awaited one by one below; a failure of a later one must not go unhandled meanwhile.
  for (const p of pretraining) p.catch(() => undefined);

  const backbones: DemoBackbone[] = [];
  const seedRows: DemoSeedRow[] = [];
  try {
    for (const [gi, g] of cfg.gammas.entries()) {
      const bb = await pretraining[gi];
      tfBackend = tfBackend ?? bb.backend;
      const { backend: _b, ...backbone } = bb;
      backbones.push(backbone);

      // 3. Features through onnxruntime.
      const feats = await stage(
        keys.features(g),
        'demo.features',
        { gamma: g, backbone: bb.dir, datasets: [ids.downstream, ids.ood] },
        async (run, report) => {
          const one = async (dataset: string, base: number, total: number) => {
            const r = await extractDatasetFeatures(projectDir, {
              backbone: bb.dir,
              dataset,
              batchSize: 256,
              signal: opts.signal,
              onProgress: (done) => report((base + done) / total, `${dataset} ${done} images`),
            });
            await run.log(`${dataset}: ${r.meta.count}×${r.meta.featureDim} → ${r.meta.file}${r.cached ? ' (cached)' : ''} in ${r.meta.seconds.toFixed(2)} s`);
            return { file: r.meta.file, count: r.meta.count, dim: r.meta.featureDim, cached: r.cached };
          };
          const total = down.labels.length + ood.labels.length;
          const d = await one(ids.downstream, 0, total);
          const o = await one(ids.ood, down.labels.length, total);
          return { downstream: d, ood: o, featureDim: d.dim };
        },
        parseAs<FeaturesStageResult>((v) => typeof v.featureDim === 'number'),
      );
      const views = await featureViews(projectDir, feats, down, ood);

      // 4. Spectra of the backbone features (SVE on ID, LSVR on OOD; both kept everywhere).
      const spec = await stage(
        keys.spectrum(g),
        'demo.spectrum',
        { gamma: g, features: [feats.downstream.file, feats.ood.file], preprocess: ['none', 'reference'] },
        async (run, report) => {
          const sets: Record<string, SpectrumPair> = {};
          const all = [
            { name: 'id-train', set: views.train },
            { name: 'id', set: views.test },
            ...views.targets,
          ];
          for (const [k, s] of all.entries()) {
            sets[s.name] = await spectrumPair(s.set.features, s.set.rows, s.set.dim, `${s.name} features of ${bb.id}`);
            run.metric('spectrum', k, { sve: sets[s.name].reference.sve, lsvr: sets[s.name].reference.lsvr, sveRaw: sets[s.name].none.sve, lsvrRaw: sets[s.name].none.lsvr });
            report((k + 1) / all.length, s.name);
          }
          return { sets };
        },
        parseAs<SpectrumStageResult>((v) => typeof v.sets === 'object' && v.sets !== null),
      );

      // 5. Tuning: fit on the source (ID train), evaluate on ID test and each target domain.
      for (const m of cfg.methods) {
        for (const seed of cfg.tuneSeeds) {
          const tr = await stage(
            keys.tune(g, m, seed),
            'demo.tune',
            { gamma: g, method: m, seed, preset: m === 'nmtune' ? 'paper' : null, epochs: cfg.tuneEpochs, batchSize: cfg.tuneBatchSize, features: [feats.downstream.file, feats.ood.file] },
            (run, report) => tuneStage(cfg, m, seed, views, run, report, opts.signal),
            parseAs<TuneStageResult>((v) => typeof v.evals === 'object' && v.evals !== null),
          );
          tfBackend = tfBackend ?? tr.backend;
          for (const [domain, e] of Object.entries(tr.evals)) {
            const f = spec.sets[domain];
            if (!f) throw new NmlabError('INTERNAL', `no spectrum of the "${domain}" features for γ=${g}`);
            seedRows.push({
              gamma: g,
              method: m,
              seed,
              domain,
              kind: domain === 'id' ? 'id' : 'ood',
              rows: e.rows,
              accuracy: e.accuracy,
              macroF1: e.macroF1,
              featSve: f.reference.sve,
              featLsvr: f.reference.lsvr,
              zSve: e.z.reference.sve,
              zLsvr: e.z.reference.lsvr,
              featSveRaw: f.none.sve,
              featLsvrRaw: f.none.lsvr,
              zSveRaw: e.z.none.sve,
              zLsvrRaw: e.z.none.lsvr,
            });
          }
        }
      }
    }
  } catch (err) {
    // The demo cannot finish without every backbone: stop the pre-training still running.
    cancelJobs();
    throw err;
  } finally {
    await Promise.allSettled(pretraining);
    opts.signal?.removeEventListener('abort', cancelJobs);
    await jobs.dispose();
  }

  // 6. Results.
  const resultsDir = join(projectDir, RESULTS_FOLDER);
  await mkdir(resultsDir, { recursive: true });
  const rows = aggregateSeeds(seedRows);
  const summary = summarize(seedRows);
  const charts = demoCharts(summary, cfg.gammas);
  for (const [name, svg] of Object.entries(charts)) await writeFile(join(resultsDir, name), svg);
  const csv = resultsCsv(rows);
  await writeFile(join(resultsDir, 'demo-results.csv'), csv);
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
      oodTargets: ood.manifest.domains.filter((d) => d !== 'clean'),
      datasets: { source: ids.source, pretrain: ids.pretrain, downstream: ids.downstream, ood: ids.ood, ...Object.fromEntries(cfg.gammas.map((g) => [`noisy-${gammaPct(g)}`, ids.noisy(g)])) },
      spectrumPreprocess: 'reference',
    },
    backend: { tf: tfBackend, features: 'onnxruntime-node' },
    timing: { wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds() + childCpuSeconds() - cpu0, loadAverage: loadavg(), cores: cpus().length, stages: timings },
    backbones,
    rows,
    seedRows,
    summary,
    files: { json: `${RESULTS_FOLDER}/demo-results.json`, csv: `${RESULTS_FOLDER}/demo-results.csv`, charts: Object.keys(charts).map((n) => `${RESULTS_FOLDER}/${n}`) },
  });
  await writeJsonAtomic(join(resultsDir, 'demo-results.json'), results);
  return { results, table: formatTable(summary), resultsDir };
}

/**
 * Pre-train one backbone as a `pretrain` job (src/core/jobs/kinds/pretrain.ts) in a worker:
 * symmetric noise γ on the training split of the pre-training set, the same rows and seed as
 * the recorded noisy dataset, which is checked against the backbone's provenance afterwards.
 */
async function pretrainStage(
  jobs: JobRunner,
  projectDir: string,
  cfg: DemoConfig,
  ids: DemoDatasetIds,
  gamma: number,
  id: string,
  run: Run,
  progress: ProgressReporter,
  key: string,
  /** Resolves once the previous γ's job has been queued (so jobs queue in γ order). */
  previous: Promise<void>,
  queued: () => void,
): Promise<PretrainStageResult> {
  const noisy = await prepareNoisy(projectDir, cfg, gamma);
  await previous;
  const job = jobs.start({
    kind: 'pretrain',
    projectDir,
    dataset: ids.pretrain,
    noise: { type: 'symmetric', ratio: gamma, seed: cfg.noiseSeed },
    seed: cfg.pretrainSeed,
    id,
    // An earlier attempt may have saved the backbone and died before its run was marked done.
    force: true,
    hyper: cfg.pretrainHyper,
    arch: cfg.arch,
  });
  queued();
  await run.log(`pretrain job ${job.id}: ${id} on "${ids.pretrain}" (train split), symmetric γ=${gamma}, seed ${cfg.noiseSeed}`);
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    progress.begin(key);
  };
  const off = jobs.onEvent((e) => {
    if (e.type === 'state' && e.job.id === job.id && e.job.state === 'running') start();
    else if (e.type === 'progress' && e.jobId === job.id) {
      start();
      progress.update(e.progress.total > 0 ? e.progress.done / e.progress.total : 0, e.progress.message ?? '', key);
    } else if (e.type === 'metric' && e.jobId === job.id && e.name === 'epoch') run.metric('epoch', e.step, e.values);
    else if (e.type === 'log' && e.jobId === job.id) void run.log(e.message);
  });
  let info;
  try {
    info = await jobs.wait(job.id);
  } finally {
    off();
  }
  start();
  if (info.state !== 'succeeded') {
    const err = info.error;
    throw new NmlabError(err?.code === 'CANCELLED' ? 'CANCELLED' : 'JOB_FAILED', `pre-training of ${id} (γ=${gamma}) ${info.state}: ${err?.message ?? 'no reason given'}`);
  }
  const manifest = await readBackboneManifest(join(projectDir, 'backbones', id, 'backbone.json'));
  const p = manifest.provenance as PretrainProvenance | undefined;
  // The worker injects the noise itself; it must be the noise recorded in the derived dataset.
  const rec = noisy.derived?.op === 'noise' ? noisy.derived.noise : null;
  if (!p || !rec || rec.flippedCount !== p.flippedCount || JSON.stringify(rec.transitionMatrix) !== JSON.stringify(p.transitionMatrix)) {
    throw new NmlabError('INTERNAL', `the noise of backbone ${id} (${p?.flippedCount ?? '?'} flipped) differs from the recorded dataset "${noisy.id}" (${rec?.flippedCount ?? '?'} flipped)`);
  }
  await run.log(`saved backbones/${id}: ${p.flippedCount} of ${p.trainCount} labels flipped, test acc ${p.testAcc !== undefined ? (100 * p.testAcc).toFixed(2) : '—'} %`);
  return {
    gamma,
    id,
    dir: `backbones/${id}`,
    sha256: manifest.sha256,
    noisyDataset: noisy.id,
    flippedCount: p.flippedCount,
    trainCount: p.trainCount,
    pretrainTestAccuracy: p.testAcc ?? null,
    trainAccuracyClean: p.trainAccClean,
    trainAccuracyNoisy: p.trainAccNoisy,
    epochs: p.epochs,
    seconds: p.seconds,
    backend: p.backend,
  };
}

async function tuneStage(cfg: DemoConfig, method: TuneMethod, seed: number, views: FeatureViews, run: Run, report: Report, signal: AbortSignal | undefined): Promise<TuneStageResult> {
  const numClasses = cfg.downstreamClasses.length;
  const tuner = makeTuner({ method, epochs: cfg.tuneEpochs, seed, batchSize: cfg.tuneBatchSize, numClasses, preset: 'paper' });
  try {
    await tuner.fit(views.train, {
      signal,
      onStep: (e) => {
        if (e.step % 20 === 0) run.metric('loss', e.step, { total: e.total, ce: e.ce, ...(e.mse !== undefined ? { mse: e.mse, cov: e.cov ?? NaN, svd: e.svd ?? NaN } : {}) });
        report((0.9 * e.step) / e.totalSteps, `epoch ${e.epoch + 1}/${cfg.tuneEpochs}`);
      },
      onEpoch: (e) => run.metric('epoch', e.epoch, { meanLoss: e.meanLoss, seconds: e.seconds }),
    });
    if (tuner.stopped_?.reason === 'aborted') throw new NmlabError('CANCELLED', `${method} stopped after ${tuner.stopped_.steps} of ${tuner.stopped_.totalSteps} steps`);
    const evals: TuneStageResult['evals'] = {};
    const sets = [{ name: 'id', set: views.test }, ...views.targets];
    for (const s of sets) {
      const { z, predictions } = tuner.transformPredict(s.set);
      evals[s.name] = {
        rows: s.set.rows,
        accuracy: accuracy(s.set.labels, predictions),
        macroF1: macroF1(s.set.labels, predictions),
        z: await spectrumPair(z, s.set.rows, s.set.dim, `tuned features Z (${method}, ${s.name})`),
      };
    }
    await run.log(`${method}: ID acc ${(100 * evals.id.accuracy).toFixed(2)} % in ${tuner.fitSeconds_.toFixed(1)} s`);
    return { method, params: { ...tuner.getParams() }, trainRows: tuner.trainRows_, fitSeconds: tuner.fitSeconds_, backend: tuner.backend_, evals };
  } finally {
    tuner.dispose();
  }
}
