/**
 * Asymmetric pre-training noise in a study, end to end on the queue's worker processes (issue
 * 10 item 1, paper §7.3): a study whose pre-training axis asks for class-conditional noise
 * along a class map writes noisy labels in which exactly round(γ·N_S) of the N_S train rows of
 * the map's classes flipped, each to map[clean class] and nothing else; the backbone records
 * the sha256 of the labels it trained on, equal to that of the noise job's labels (recomputed
 * here from the dataset files), with the asymmetric noise, its transitions and what it
 * memorised in its provenance. The symmetric study at the same γ and seed writes other labels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDirectClient, createLabBackend, type LabBackend } from '../../src/core/backend';
import { gatherRows, loadDataset, writeDataset, type LoadedDataset } from '../../src/core/datasets/store';
import { importDemoData } from '../../src/core/demo/data';
import { ProjectService } from '../../src/core/projects/service';
import type { ExperimentDetail } from '../../src/shared/contract/experiments';
import {
  StudyAggregateRunResult,
  StudyFeaturesRunResult,
  StudyNoiseRunResult,
  StudyPretrainRunResult,
  StudySpectrumRunResult,
  type NoiseSpec,
  type StudySpecInput,
} from '../../src/shared/contract/study';
import { readNpy } from '../../src/core/arrays/npy';

/** Fashion-MNIST's confusable classes (T-shirt ↔ shirt, pullover → coat, sandal → sneaker). */
const MAP: Record<number, number> = { 0: 6, 6: 0, 2: 4, 5: 7 };
const GAMMA = 0.3;
const SEED = 3;
const TRAIN_PER_CLASS = 30;
const TEST_PER_CLASS = 10;

let root: string;
let project: string;
let backend: LabBackend;

/** sha256 of labels as little-endian int32 — written here without NMLab's helper. */
function sha(labels: Int32Array): string {
  const b = Buffer.alloc(labels.length * 4);
  labels.forEach((v, i) => b.writeInt32LE(v, 4 * i));
  return createHash('sha256').update(b).digest('hex');
}

function trainLabels(ds: LoadedDataset): Int32Array {
  return Int32Array.from(ds.labels.filter((_, i) => ds.split![i] === 0));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nmlab-asym-'));
  project = join(root, 'project');
  await new ProjectService({ home: join(root, 'home') }).create(project, 'asymmetric pre-training noise');
  // The first 30 train and 10 test images of each class of the embedded Fashion-MNIST subset.
  const src = await loadDataset(project, (await importDemoData(project)).id);
  const rows: number[] = [];
  const split: number[] = [];
  for (const [part, per] of [[0, TRAIN_PER_CLASS], [1, TEST_PER_CLASS]] as const) {
    const taken = new Array<number>(10).fill(0);
    src.labels.forEach((y, i) => {
      if (src.split![i] === part && taken[y] < per) {
        taken[y]++;
        rows.push(i);
        split.push(part);
      }
    });
  }
  const im = src.images!;
  await writeDataset(
    project,
    'fm-small',
    {
      name: 'Fashion-MNIST, 30 + 10 per class',
      kind: 'images',
      source: { type: 'derived', parent: src.manifest.id },
      classes: src.manifest.classes,
      domains: ['default'],
      image: { height: im.height, width: im.width, channels: im.channels },
      split: { file: 'split.npy', train: 10 * TRAIN_PER_CLASS, test: 10 * TEST_PER_CLASS, method: 'given' },
    },
    { labels: Int32Array.from(rows, (r) => src.labels[r]), images: { ...im, count: rows.length, pixels: gatherRows(im.pixels, im.height * im.width * im.channels, Int32Array.from(rows)) }, split: Uint8Array.from(split) },
  );
  backend = createLabBackend({ home: join(root, 'home'), experimentConcurrency: 2 });
});

afterAll(async () => {
  await backend?.dispose();
  await rm(root, { recursive: true, force: true });
});

function spec(name: string, noise: NoiseSpec): StudySpecInput {
  return {
    name,
    pretrain: {
      dataset: 'fm-small',
      noise,
      gammas: [GAMMA],
      seeds: [0],
      architecture: { stemWidth: 4, stemStride: 2, widths: [8], blocks: [1] },
      recipe: { epochs: 1, batchSize: 50 },
    },
    tasks: [{ id: 'fm', dataset: 'fm-small' }],
    methods: [{ method: 'lp', params: { epochs: 1 } }],
  };
}

async function startAndWait(s: StudySpecInput): Promise<ExperimentDetail> {
  const api = createDirectClient(backend);
  const id = (await api.experiments.create({ projectDir: project, start: true, spec: s })).summary.id;
  await backend.experiments.waitIdle(project, id);
  return api.experiments.get({ projectDir: project, id });
}

/** Create and start the studies together (they share the queue's two slots), wait for all, check every job succeeded. */
async function runStudies(specs: StudySpecInput[]): Promise<ExperimentDetail[]> {
  const api = createDirectClient(backend);
  const ids: string[] = [];
  for (const s of specs) ids.push((await api.experiments.create({ projectDir: project, start: true, spec: s })).summary.id);
  const out: ExperimentDetail[] = [];
  for (const id of ids) {
    await backend.experiments.waitIdle(project, id);
    const d = await api.experiments.get({ projectDir: project, id });
    expect(d.jobs.filter((j) => j.state !== 'succeeded').map((j) => `${j.key}: ${j.error}`)).toEqual([]);
    out.push(d);
  }
  return out;
}

async function resultOf(d: ExperimentDetail, stage: string): Promise<Record<string, unknown>> {
  const job = d.jobs.find((j) => j.stage === stage)!;
  return JSON.parse(await readFile(join(project, 'runs', job.runId!, 'result.json'), 'utf8')) as Record<string, unknown>;
}

/**
 * Every job's result.json against the study contract's schema of its stage (strict: no field
 * the contract does not name; the pretrain result passes the backbone's provenance through);
 * returns the stages checked. Tune fits write the tuning run's result, checked elsewhere.
 */
async function checkStageResults(d: ExperimentDetail): Promise<string[]> {
  const schemas = {
    noise: StudyNoiseRunResult.strict(),
    pretrain: StudyPretrainRunResult,
    features: StudyFeaturesRunResult.strict(),
    spectrum: StudySpectrumRunResult.strict(),
    aggregate: StudyAggregateRunResult.strict(),
  };
  const seen = new Set<string>();
  for (const job of d.jobs) {
    if (!(job.stage in schemas)) continue;
    const raw: unknown = JSON.parse(await readFile(join(project, 'runs', job.runId!, 'result.json'), 'utf8'));
    const r = schemas[job.stage as keyof typeof schemas].safeParse(raw);
    expect(r.success ? 'ok' : `${job.key}: ${r.error.message}`).toBe('ok');
    seen.add(job.stage);
  }
  return [...seen].sort();
}

describe('asymmetric noise in a study’s pre-training', () => {
  it('flips round(γ·N_S) train labels of the mapped classes along the map, and the backbone trains on exactly those labels', async () => {
    const [d, ds] = await runStudies([
      spec('asymmetric pre-training', { type: 'asymmetric', seed: SEED, map: Object.fromEntries(Object.entries(MAP).map(([k, v]) => [String(k), v])) }),
      spec('symmetric pre-training', { type: 'symmetric', seed: SEED }),
    ]);
    const noiseJob = d.jobs.find((j) => j.stage === 'noise')!;
    const pretrainJob = d.jobs.find((j) => j.stage === 'pretrain')!;
    if (noiseJob.stage !== 'noise' || pretrainJob.stage !== 'pretrain') throw new Error('unreachable');
    expect(pretrainJob.deps).toEqual([noiseJob.key]);

    // The noise job's labels against the clean ones, row by row.
    const clean = await loadDataset(project, 'fm-small');
    const noisy = await loadDataset(project, noiseJob.output);
    const flippedRows: number[] = [];
    let eligible = 0;
    for (let i = 0; i < clean.labels.length; i++) {
      const y = clean.labels[i];
      if (clean.split![i] === 0 && y in MAP) eligible++;
      if (noisy.labels[i] === y) continue;
      flippedRows.push(i);
      expect(clean.split![i]).toBe(0); // the test split stays clean
      expect(y in MAP).toBe(true); // only the map's classes flip …
      expect(noisy.labels[i]).toBe(MAP[y]); // … and each to map[clean]
    }
    expect(eligible).toBe(4 * TRAIN_PER_CLASS);
    // Realised flip rate among the eligible rows. The injection flips exactly round(γ·N_S) of
    // them (DESIGN §4), so the rate is γ to within the rounding step 1/(2·N_S) = 0.0042 — far
    // inside the binomial band 3·√(γ(1−γ)/N_S) = 0.125 a per-row coin would allow.
    expect(flippedRows.length).toBe(Math.round(GAMMA * eligible));
    expect(Math.abs(flippedRows.length / eligible - GAMMA)).toBeLessThanOrEqual(1 / (2 * eligible));
    expect(Math.abs(flippedRows.length / eligible - GAMMA)).toBeLessThan(3 * Math.sqrt((GAMMA * (1 - GAMMA)) / eligible));
    // flipped.npy lists those rows; the manifest says asymmetric with the map.
    expect(Array.from((await readNpy(join(project, 'datasets', noiseJob.output, 'flipped.npy'))).data as Int32Array)).toEqual(flippedRows);
    expect(noisy.manifest.derived).toMatchObject({ op: 'noise', noise: { type: 'asymmetric', ratio: GAMMA, seed: SEED, flippedCount: flippedRows.length, params: { map: MAP } } });

    const labelsSha = sha(trainLabels(noisy));
    expect(await resultOf(d, 'noise')).toMatchObject({ dataset: noiseJob.output, flippedCount: flippedRows.length, labelsSha256: labelsSha });

    // The pre-training job trained on exactly those labels: its result and the backbone's provenance name them.
    const pre = await resultOf(d, 'pretrain');
    expect(pre).toMatchObject({ backbone: pretrainJob.backbone, labelsSha256: labelsSha, flippedCount: flippedRows.length, reused: false });
    const manifest = JSON.parse(await readFile(join(project, 'backbones', pretrainJob.backbone, 'backbone.json'), 'utf8'));
    const prov = manifest.provenance;
    expect(prov.labelsSha256).toBe(labelsSha);
    expect(prov.noise).toEqual({ type: 'asymmetric', ratio: GAMMA, seed: SEED, map: MAP });
    expect(prov.flippedCount).toBe(flippedRows.length);
    expect(prov.trainCount).toBe(10 * TRAIN_PER_CLASS);
    // Realised transitions: the diagonal and (a, map[a]) only, with the counts seen above.
    const counts: number[][] = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    for (let i = 0; i < clean.labels.length; i++) if (clean.split![i] === 0) counts[clean.labels[i]][noisy.labels[i]]++;
    const expected = counts.map((row) => row.map((v) => v / TRAIN_PER_CLASS));
    prov.transitionMatrix.forEach((row: number[], a: number) => row.forEach((v, b) => expect(v).toBeCloseTo(expected[a][b], 12)));
    // Memorisation is measured on the flips (not null as for a set with nothing flipped).
    expect(prov.memorised).toBeGreaterThanOrEqual(0);
    expect(prov.memorised).toBeLessThanOrEqual(1);
    expect(pre.memorised).toBe(prov.memorised);

    // The symmetric study at the same γ and seed: other labels, flips outside the map.
    const symNoise = ds.jobs.find((j) => j.stage === 'noise')!;
    if (symNoise.stage !== 'noise') throw new Error('unreachable');
    expect(symNoise.output).not.toBe(noiseJob.output);
    const sym = await loadDataset(project, symNoise.output);
    const symSha = sha(trainLabels(sym));
    expect(symSha).not.toBe(labelsSha);
    expect(await readFile(join(project, 'datasets', symNoise.output, 'labels.npy'))).not.toEqual(await readFile(join(project, 'datasets', noiseJob.output, 'labels.npy')));
    const symFlips = Array.from(sym.labels.keys()).filter((i) => sym.labels[i] !== clean.labels[i]);
    expect(symFlips.length).toBe(Math.round(GAMMA * 10 * TRAIN_PER_CLASS));
    expect(symFlips.some((i) => !(clean.labels[i] in MAP) || sym.labels[i] !== MAP[clean.labels[i]])).toBe(true);
    expect(await resultOf(ds, 'pretrain')).toMatchObject({ labelsSha256: symSha });

    // What each stage recorded is what the study contract says it records.
    expect(await checkStageResults(d)).toEqual(['aggregate', 'features', 'noise', 'pretrain', 'spectrum']);
  }, 240_000);

  it('reuses a backbone only if it trained on the study’s noisy labels', async () => {
    const noise: NoiseSpec = { type: 'asymmetric', seed: SEED, map: Object.fromEntries(Object.entries(MAP).map(([k, v]) => [String(k), v])) };
    // The same pre-training axis in another study: the backbone the first test trained is reused, its labels checked.
    const again = await startAndWait(spec('asymmetric pre-training, again', noise));
    const pretrainJob = again.jobs.find((j) => j.stage === 'pretrain')!;
    if (pretrainJob.stage !== 'pretrain') throw new Error('unreachable');
    expect(pretrainJob.state).toBe('succeeded');
    const labelsSha = sha(trainLabels(await loadDataset(project, pretrainJob.noisyDataset)));
    expect(await resultOf(again, 'pretrain')).toMatchObject({ backbone: pretrainJob.backbone, reused: true, labelsSha256: labelsSha, labelsVerified: true });
    expect(await checkStageResults(again)).toContain('pretrain');

    // The backbone now claims other training labels (as after re-deriving the noisy set): the stage refuses it and says what to do.
    const file = join(project, 'backbones', pretrainJob.backbone, 'backbone.json');
    const manifest = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...manifest, provenance: { ...manifest.provenance, labelsSha256: '0'.repeat(64) } }));
    const refused = await startAndWait(spec('asymmetric pre-training, stale backbone', noise));
    const job = refused.jobs.find((j) => j.stage === 'pretrain')!;
    expect(job.state).toBe('failed');
    expect(job.error).toContain(`backbone ${pretrainJob.backbone} exists but was trained on labels (sha256 000000000000…) that are not the train labels of dataset "${pretrainJob.noisyDataset}" (sha256 ${labelsSha.slice(0, 12)}…)`);
    expect(job.error).toContain('delete or rename');
    // Nothing was deleted: the user's folder stays as it was.
    expect(JSON.parse(await readFile(file, 'utf8')).provenance.labelsSha256).toBe('0'.repeat(64));
  }, 240_000);
});
