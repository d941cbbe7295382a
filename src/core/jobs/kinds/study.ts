/**
 * `study`: one job of a study's graph (src/core/experiments/graph.ts), in a worker process or
 * — through {@link runStudyJob} — in this one (`nmlab worker`, what a Slurm task runs). The
 * queue made the run folder; this writes its status, log, metrics and result. Every stage
 * reuses what already exists (a derived dataset, a backbone, cached features), so a job killed
 * after its output was written and then re-run finishes at once.
 *
 *   noise      label noise (γ or η) as a derived dataset (src/core/datasets/noise.ts)
 *   pretrain   the `pretrain` kind: CNN on the noise stage's labels (checked by their sha256),
 *              ONNX export, saved as a backbone
 *   domains    corruption domains of a task's test rows (src/core/datasets/derive.ts)
 *   features   the project's feature cache (src/core/features/cache.ts)
 *   spectrum   SVE/LSVR of F on every set of a task (paper §5), both preprocessings
 *   tune       `runTuneFit` on the task's sets (one fit; ID test and every OOD target); for
 *              ft and lora, the backbone itself trained on the task's images (./finetune.ts)
 *   aggregate  the comparison, `experiments/<id>/compare.json`
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TuneMethodName } from '../../../shared/contract/tuning';
import { PretrainJobResult } from '../../../shared/contract/pretrain';
import type { StudyAggregateRunResult, StudyDomainsRunResult, StudyFeaturesRunResult, StudyJob, StudyNoiseRunResult, StudyPretrainRunResult, StudySet, StudySpectrumRunResult } from '../../../shared/contract/study';
import { NmlabError } from '../../../shared/errors';
import { readNpy } from '../../arrays/npy';
import { deriveCorruptions } from '../../datasets/derive';
import { deriveNoisy } from '../../datasets/noise';
import { loadDataset, readDatasetManifest, splitRows } from '../../datasets/store';
import { labelsSha256 } from '../../noise';
import { BACKBONE_FILE, BACKBONES_FOLDER, readBackboneManifest } from '../../features/backbone';
import { extractDatasetFeatures } from '../../features/cache';
import { writeJsonAtomic } from '../../fs/atomic';
import { compareExperiment } from '../../experiments/compare';
import { writeRunJson } from '../../runs/store';
import { appendRunLog, setRunStatus } from '../../runs/files';
import { experimentDir, readExperiment, readQueue, studyRunId } from '../../experiments/store';
import { resolveInside } from '../../projects/resolveInside';
import { spectrumOfMatrix } from '../../spectrum';
import type { FeatureSet } from '../../tuning/data';
import { loadFeatureSet } from '../../tuning/load';
import { run as runPretrainKind } from './pretrain';
import { runTuneFit } from './tune';
import { finetuneFit } from './finetune';
import { setRows } from './studySets';
import type { JobContext, JobRun } from './types';

type Job<S extends StudyJob['stage']> = Extract<StudyJob, { stage: S }>;

interface StageContext {
  projectDir: string;
  experimentId: string;
  runId: string;
  attempt: number;
  ctx: JobContext;
  log: (line: string) => Promise<void>;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function datasetExists(projectDir: string, id: string): Promise<boolean> {
  return readDatasetManifest(projectDir, id).then(
    () => true,
    () => false,
  );
}

// ---- stages ---------------------------------------------------------------------------------

/** sha256 of a dataset's labels on a split's rows, in row order (what the noise stage flipped; src/core/noise). */
async function splitLabelsSha(projectDir: string, id: string, split: 'train' | 'all'): Promise<string> {
  const ds = await loadDataset(projectDir, id);
  return labelsSha256(Int32Array.from(splitRows(ds, split), (r) => ds.labels[r]));
}

async function noiseStage(job: Job<'noise'>, s: StageContext): Promise<StudyNoiseRunResult> {
  if (await datasetExists(s.projectDir, job.output)) {
    const m = await readDatasetManifest(s.projectDir, job.output);
    const rec = m.derived?.op === 'noise' ? m.derived.noise : null;
    if (!rec || rec.ratio !== job.ratio || rec.seed !== job.noise.seed || rec.type !== job.noise.type) {
      throw new NmlabError('ALREADY_EXISTS', `dataset "${job.output}" exists but is not ${job.noise.type} noise ${job.ratio} with seed ${job.noise.seed}; delete it or rename it`);
    }
    await s.log(`reused dataset ${job.output}: ${rec.flippedCount} labels flipped`);
    return { dataset: job.output, flippedCount: rec.flippedCount, labelsSha256: await splitLabelsSha(s.projectDir, job.output, job.split), reused: true };
  }
  const n = job.noise;
  const m = await deriveNoisy(s.projectDir, job.dataset, {
    id: job.output,
    type: n.type,
    ratio: job.ratio,
    seed: n.seed,
    split: job.split,
    ...(n.type === 'asymmetric' && n.classes ? { classes: n.classes } : {}),
    ...(n.type === 'asymmetric' && n.map ? { map: Object.fromEntries(Object.entries(n.map).map(([k, v]) => [Number(k), v])) } : {}),
  });
  const rec = m.derived?.op === 'noise' ? m.derived.noise : null;
  await s.log(`wrote dataset ${job.output}: ${rec?.flippedCount ?? '?'} labels flipped (${job.noise.type}, ratio ${job.ratio}, seed ${n.seed})`);
  return { dataset: job.output, flippedCount: rec?.flippedCount ?? null, labelsSha256: await splitLabelsSha(s.projectDir, job.output, job.split), reused: false };
}

async function pretrainStage(job: Job<'pretrain'>, s: StageContext): Promise<StudyPretrainRunResult> {
  const folder = await resolveInside(s.projectDir, join(BACKBONES_FOLDER, job.backbone));
  const manifestFile = join(folder, BACKBONE_FILE);
  if (await exists(manifestFile)) {
    const m = await readBackboneManifest(manifestFile);
    // A backbone already there is reused only if it was trained on this study's noisy labels:
    // the dataset may have been re-derived since, or the folder may hold another model.
    const trained = m.provenance?.labelsSha256;
    const expected = await splitLabelsSha(s.projectDir, job.noisyDataset, 'train');
    if (trained !== undefined && trained !== expected) {
      throw new NmlabError(
        'ALREADY_EXISTS',
        `backbone ${job.backbone} exists but was trained on labels (sha256 ${trained.slice(0, 12)}…) that are not the train labels of dataset "${job.noisyDataset}" (sha256 ${expected.slice(0, 12)}…); delete or rename ${join(BACKBONES_FOLDER, job.backbone)} to pre-train it again`,
      );
    }
    await s.log(
      trained
        ? `reused backbone ${job.backbone} (sha256 ${m.sha256.slice(0, 12)}…), trained on the labels of ${job.noisyDataset} (sha256 ${expected.slice(0, 12)}…)`
        : `reused backbone ${job.backbone} (sha256 ${m.sha256.slice(0, 12)}…); it records no training labels, so they could not be checked against ${job.noisyDataset}`,
    );
    return { backbone: job.backbone, sha256: m.sha256, reused: true, labelsSha256: trained ?? null, labelsVerified: trained !== undefined, provenance: m.provenance ?? null };
  }
  // The pretrain kind draws the noise itself on the clean train split with the noise stage's
  // spec and seed (one injection for both, src/core/noise), so the backbone's provenance holds
  // the flips, the realised transitions and what it memorised, for symmetric and asymmetric
  // (§7.3) noise alike. The labels it trained on must be the noise stage's, to the bit.
  const result = PretrainJobResult.parse(
    await runPretrainKind(
      {
        kind: 'pretrain',
        projectDir: s.projectDir,
        dataset: job.dataset,
        noise: { ...job.noise, ratio: job.gamma },
        seed: job.seed,
        id: job.backbone,
        // An earlier attempt may have saved part of the folder before it was killed.
        force: true,
        hyper: job.hyper,
        arch: job.arch,
      },
      s.ctx,
    ),
  );
  const expected = await splitLabelsSha(s.projectDir, job.noisyDataset, 'train');
  if (result.labelsSha256 !== expected) {
    await rm(folder, { recursive: true, force: true });
    throw new NmlabError(
      'INTERNAL',
      `backbone ${job.backbone} was trained on labels (sha256 ${result.labelsSha256?.slice(0, 12) ?? '?'}…) that are not the train labels of dataset "${job.noisyDataset}" (sha256 ${expected.slice(0, 12)}…); it was removed`,
    );
  }
  await s.log(
    `saved backbone ${job.backbone}: trained on the labels of ${job.noisyDataset} (sha256 ${expected.slice(0, 12)}…), ${result.flippedCount} flipped (${job.noise.type}), ${result.memorised != null ? `${(100 * result.memorised).toFixed(1)} % of them memorised, ` : ''}clean test accuracy ${result.testAcc !== undefined ? (100 * result.testAcc).toFixed(2) + ' %' : '—'}`,
  );
  return { backbone: job.backbone, sha256: result.sha256, reused: false, labelsSha256: expected, flippedCount: result.flippedCount, memorised: result.memorised ?? null, testAccuracy: result.testAcc ?? null };
}

async function domainsStage(job: Job<'domains'>, s: StageContext): Promise<StudyDomainsRunResult> {
  if (await datasetExists(s.projectDir, job.output)) {
    await s.log(`reused dataset ${job.output}`);
    return { dataset: job.output, reused: true };
  }
  const m = await deriveCorruptions(s.projectDir, job.dataset, { id: job.output, corruptions: job.corruptions, seed: job.seed, split: job.split, includeClean: false });
  await s.log(`wrote dataset ${job.output}: ${m.count} images, domains ${m.domains.join(', ')}`);
  return { dataset: job.output, count: m.count, reused: false };
}

async function cachedFeatures(projectDir: string, backbone: string, dataset: string, ctx?: JobContext) {
  return extractDatasetFeatures(projectDir, {
    backbone: `${BACKBONES_FOLDER}/${backbone}`,
    dataset,
    batchSize: 256,
    signal: ctx?.signal,
    onProgress: ctx ? (done, total, message) => ctx.progress(done, total, `${dataset}: ${message}`) : undefined,
  });
}

async function featuresStage(job: Job<'features'>, s: StageContext): Promise<StudyFeaturesRunResult> {
  const r = await cachedFeatures(s.projectDir, job.backbone, job.dataset, s.ctx);
  await s.log(`${job.dataset} through ${job.backbone}: ${r.meta.count}×${r.meta.featureDim} → ${r.meta.file}${r.cached ? ' (cached)' : ` in ${r.meta.seconds.toFixed(2)} s`}`);
  return { file: r.meta.file, key: r.meta.key, count: r.meta.count, featureDim: r.meta.featureDim, cached: r.cached };
}

/** The rows of a set as a feature matrix with labels: from the feature cache, or (escape hatch) from its files. */
async function loadSet(projectDir: string, backbone: string, set: StudySet): Promise<FeatureSet> {
  if ('features' in set) {
    const [f, y] = await Promise.all([resolveInside(projectDir, set.features), resolveInside(projectDir, set.labels)]);
    return { ...(await loadFeatureSet(f, y)), name: `${set.name} (${set.features})` };
  }
  const cached = await cachedFeatures(projectDir, backbone, set.dataset);
  const arr = await readNpy(cached.path);
  const dim = cached.meta.featureDim;
  const ds = await loadDataset(projectDir, set.dataset);
  if (arr.dtype !== 'float32' || ds.labels.length * dim !== arr.data.length) {
    throw new NmlabError('BAD_FILE', `cached features ${cached.meta.file} do not match dataset "${set.dataset}" (${ds.labels.length} rows); delete them to recompute`);
  }
  const labels = ds.labels;
  const rows = setRows(ds, set);
  const data = arr.data as Float32Array;
  const features = new Float32Array(rows.length * dim);
  rows.forEach((r, k) => features.set(data.subarray(r * dim, (r + 1) * dim), k * dim));
  return { features, labels: Int32Array.from(rows, (r) => labels[r]), rows: rows.length, dim, name: set.name };
}

async function spectrumStage(job: Job<'spectrum'>, s: StageContext): Promise<StudySpectrumRunResult> {
  const sets: StudySpectrumRunResult['sets'] = {};
  for (const [k, set] of job.sets.entries()) {
    if (s.ctx.signal.aborted) throw new NmlabError('CANCELLED', `spectra of ${job.backbone} on ${job.task} cancelled after ${k} of ${job.sets.length} sets`);
    const f = await loadSet(s.projectDir, job.backbone, set);
    if (f.rows === 0) throw new NmlabError('BAD_REQUEST', `set ${set.name} has no rows`);
    // Headline: rows L2-normalised then centred (the reference code, paper figures); raw kept beside.
    const ref = await spectrumOfMatrix(f.features, f.rows, f.dim, `F of ${set.name}`, { preprocess: 'reference' });
    const raw = await spectrumOfMatrix(f.features, f.rows, f.dim, `F of ${set.name}`, { preprocess: 'none' });
    sets[set.name] = { rows: f.rows, sve: ref.sve, lsvr: ref.lsvr, sveRaw: raw.sve, lsvrRaw: raw.lsvr };
    s.ctx.metric('spectrum', k, sets[set.name]);
    s.ctx.progress(k + 1, job.sets.length, set.name);
  }
  await s.log(`spectra of ${job.backbone} on ${Object.keys(sets).length} sets`);
  return { backbone: job.backbone, task: job.task, sets };
}

/** Live loss points per fit at most (the run's metrics.jsonl has every step). */
const LIVE_LOSS_POINTS = 200;

/** One fit through the tuning use case, on the task's sets in memory, into the run the queue made. */
async function tuneStage(job: Job<'tune'> & { method: TuneMethodName }, s: StageContext): Promise<unknown> {
  const train = await loadSet(s.projectDir, job.backbone, job.train);
  const test = job.test ? await loadSet(s.projectDir, job.backbone, job.test) : null;
  const targets = [];
  for (const t of job.targets) targets.push({ name: t.name, set: await loadSet(s.projectDir, job.backbone, t) });
  let every = 1;
  const { result } = await runTuneFit(
    { ...job.params, method: job.method, preset: job.preset, seed: job.seed, fraction: job.fraction },
    { train, test, targets },
    {
      run: { projectDir: s.projectDir, runId: s.runId },
      signal: s.ctx.signal,
      onLog: (line) => s.ctx.log('info', line),
      onStep: (e) => {
        every = Math.max(1, Math.floor(e.totalSteps / LIVE_LOSS_POINTS));
        s.ctx.progress(e.step, e.totalSteps, `epoch ${e.epoch + 1}`);
      },
      // Per-epoch series go live as they come; the per-step loss thinned to LIVE_LOSS_POINTS.
      onMetric: (series, step, values) => {
        if (series !== 'loss' || step % every === 0) s.ctx.metric(series, step, values);
      },
    },
  );
  return { runId: s.runId, accuracy: result.test?.accuracy ?? null, oodAccuracy: result.oodAccuracy };
}

async function aggregateStage(s: StageContext): Promise<StudyAggregateRunResult> {
  const exp = await readExperiment(s.projectDir, s.experimentId);
  const { entries } = await readQueue(s.projectDir, exp);
  const result = await compareExperiment(s.projectDir, exp, entries);
  const file = join(await experimentDir(s.projectDir, exp.id), 'compare.json');
  await writeJsonAtomic(file, result);
  await s.log(`compare.json: ${result.rows.length} rows from ${result.finished} of ${result.total} fits`);
  return { file: `experiments/${exp.id}/compare.json`, rows: result.rows.length, finished: result.finished };
}

// ---- the kind -------------------------------------------------------------------------------

export const run: JobRun<'study'> = async (spec, ctx) => {
  const { projectDir, experimentId, runId } = spec;
  // A forked worker outlives a parent killed with SIGKILL; with nobody to report to it must
  // stop, or it would go on writing a run the next queue has already marked interrupted.
  if (process.send) process.once('disconnect', () => process.exit(1));
  const exp = await readExperiment(projectDir, experimentId);
  const job = exp.jobs.find((j) => j.key === spec.jobKey);
  if (!job) throw new NmlabError('NOT_FOUND', `study "${experimentId}" has no job "${spec.jobKey}"; see \`nmlab experiment status ${experimentId}\``);
  await setRunStatus(projectDir, runId, 'running', { pid: process.pid });
  const log = async (line: string) => {
    ctx.log('info', line);
    await appendRunLog(projectDir, runId, line);
  };
  await log(`run ${runId}: ${job.title} (${job.key}, pid ${process.pid})`);
  const s: StageContext = { projectDir, experimentId, runId, attempt: spec.attempt, ctx, log };
  // runTuneFit writes the tuning run's result and status (one writer of tuning results).
  if (job.stage === 'tune' && job.method !== 'ft' && job.method !== 'lora') return tuneStage({ ...job, method: job.method }, s);
  let result: unknown;
  switch (job.stage) {
    case 'noise':
      result = await noiseStage(job, s);
      break;
    case 'pretrain':
      result = await pretrainStage(job, s);
      break;
    case 'domains':
      result = await domainsStage(job, s);
      break;
    case 'features':
      result = await featuresStage(job, s);
      break;
    case 'spectrum':
      result = await spectrumStage(job, s);
      break;
    case 'aggregate':
      result = await aggregateStage(s);
      break;
    case 'tune':
      // ft and lora train the backbone itself, on the images (./finetune.ts).
      result = await finetuneFit(projectDir, job, { signal: ctx.signal, log, progress: ctx.progress });
      break;
  }
  if (ctx.signal.aborted) throw new NmlabError('CANCELLED', `${job.title}: cancelled`);
  await writeRunJson(projectDir, runId, result);
  await setRunStatus(projectDir, runId, 'succeeded');
  return result;
};

/** How {@link runStudyJob} runs a job in this process. */
export interface StudyJobOptions {
  /**
   * The attempt to run; default: the latest one the queue started (queue.json). A requeued
   * Slurm task runs one the queue has not recorded yet (`nmlab worker --attempt N`).
   */
  attempt?: number;
  signal: AbortSignal;
  /** Progress and log lines. */
  out?: (line: string) => void;
  /** Progress lines at most this often (ms; the last always); default: every one. */
  progressEveryMs?: number;
  /** The id the job's context reports under (a Slurm task's id); default: the run id. */
  jobId?: string;
}

/**
 * Run one job of a study in this process, into the run folder of its attempt (the queue, a
 * Slurm submission or a requeued task made it): what `nmlab worker --project DIR --study ID
 * --job KEY [--attempt N]` runs (src/core/executors/task.ts).
 */
export async function runStudyJob(projectDir: string, studyId: string, jobKey: string, o: StudyJobOptions): Promise<unknown> {
  const exp = await readExperiment(projectDir, studyId);
  const index = exp.jobs.findIndex((j) => j.key === jobKey);
  if (index < 0) throw new NmlabError('NOT_FOUND', `study "${studyId}" has no job "${jobKey}"; see \`nmlab experiment status ${studyId}\``);
  let attempt = o.attempt;
  if (attempt === undefined) {
    const entry = (await readQueue(projectDir, exp)).entries.find((e) => e.key === jobKey);
    if (!entry?.runId) throw new NmlabError('BAD_REQUEST', `job "${jobKey}" of study "${studyId}" has no run yet; the queue makes it when it starts the job (\`nmlab experiment resume ${studyId}\`)`);
    attempt = entry.attempts || 1;
  }
  const runId = studyRunId(exp.id, index, attempt);
  const out = o.out ?? (() => undefined);
  let last = 0;
  const ctx: JobContext = {
    jobId: o.jobId ?? runId,
    signal: o.signal,
    progress: (done, total, message) => {
      const now = Date.now();
      if (o.progressEveryMs && now - last < o.progressEveryMs && done < total) return;
      last = now;
      out(`${jobKey}: ${done}/${total}${message ? ` ${message}` : ''}`);
    },
    // The job writes its metrics.jsonl itself.
    metric: () => undefined,
    log: (level, message) => out(`${level}: ${message}`),
  };
  return run({ kind: 'study', projectDir, experimentId: studyId, jobKey, runId, attempt }, ctx);
}
