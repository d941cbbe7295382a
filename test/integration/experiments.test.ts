/**
 * Experiments end to end on real worker processes: spec parsing (YAML) and expansion, the
 * presets, a run of LP on the tuning fixture checked against scikit-learn (lp_meta.json, made by
 * test/fixtures/tuning/make_tuning_fixtures.py), the run folders, and the comparison's
 * mean ± std recomputed independently from the result files (and its CSV).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDirectClient, createLabBackend, type LabBackend } from '../../src/core/backend';
import { expandStudy, type ProjectFacts } from '../../src/core/experiments/graph';
import { parseStudySpec, parseStudyText } from '../../src/core/experiments/spec';
import { compareToCsv, type ExperimentEvent } from '../../src/shared/contract/experiments';
import type { TuneStudyJob } from '../../src/shared/contract/study';
import { makeFeatureProject } from './experiments-project';

const fixtures = fileURLToPath(new URL('../fixtures/tuning/', import.meta.url));
const meta = JSON.parse(await readFile(join(fixtures, 'lp_meta.json'), 'utf8')) as { sklearnAccuracy: number };

let root: string;
let project: string;
let backend: LabBackend;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nmlab-exp-'));
  project = join(root, 'project');
  await makeFeatureProject(project, join(root, 'home'), { backbones: [{ id: 'g0', gamma: 0 }, { id: 'g30', gamma: 0.3 }] });
  // The scikit-learn fixture as a second dataset of backbone g0.
  const d = join(project, 'features', 'g0', 'fixture');
  await mkdir(d, { recursive: true });
  for (const [from, to] of [['lp_train_x', 'train'], ['lp_train_y', 'train.labels'], ['lp_test_x', 'test'], ['lp_test_y', 'test.labels']])
    await copyFile(join(fixtures, `${from}.npy`), join(d, `${to}.npy`));
  backend = createLabBackend({ home: join(root, 'home'), experimentConcurrency: 2 });
});

afterAll(async () => {
  await backend?.dispose();
  await rm(root, { recursive: true, force: true });
});

describe('spec', () => {
  const yaml = `
name: Small study
backbones: [{ id: g0, gamma: 0 }, { id: g30, gamma: 0.3 }]
embeddings:
  - { id: synth, train: { features: "features/{backbone}/synth/train.npy", labels: "features/{backbone}/synth/train.labels.npy" },
      test: { features: "features/{backbone}/synth/test.npy", labels: "features/{backbone}/synth/test.labels.npy" } }
methods: [{ method: lp }, { method: nmtune, preset: reference, params: { epochs: 2 } }]
fractions: [0.5, 1]
seeds: [0, 1, 2]
defaults: { epochs: 3 }
`;
  const noFacts: ProjectFacts = { datasets: new Map(), backbones: new Map() };

  it('parses YAML, fills defaults and expands embedding tasks: backbones × methods × fractions × seeds, then one aggregation', () => {
    const spec = parseStudyText(yaml, 'spec.yaml');
    expect(spec.layout).toBe('custom');
    const { jobs } = expandStudy(spec, noFacts);
    const tunes = jobs.filter((j): j is TuneStudyJob => j.stage === 'tune');
    expect(tunes.length).toBe(2 * 2 * 2 * 3);
    expect(new Set(jobs.map((j) => j.key)).size).toBe(jobs.length);
    expect(tunes[0]).toMatchObject({ key: 'tune/g0/synth/lp/f0.5/s0/eta0', backbone: 'g0', gamma: 0, method: 'lp', label: 'lp', params: { epochs: 3 }, train: { features: 'features/g0/synth/train.npy' } });
    const nm = tunes.find((j) => j.backbone === 'g30' && j.label === 'nmtune-reference' && j.fraction === 1 && j.seed === 2)!;
    // The method's own override wins over the spec's defaults.
    expect(nm.params).toEqual({ epochs: 2 });
    expect(nm.test).toMatchObject({ labels: 'features/g30/synth/test.labels.npy' });
    expect(jobs.at(-1)).toMatchObject({ key: 'aggregate', deps: tunes.map((t) => t.key) });
  });

  it('η on embedding tasks: each η a tune job of its own (key and column label carry it), drawn inside the fit with etaNoise', () => {
    const spec = parseStudyText(`${yaml}eta: [0, 0.2]\netaNoise: { semantics: other-class, seed: 5 }\n`, 'spec.yaml');
    const tunes = expandStudy(spec, noFacts).jobs.filter((j): j is TuneStudyJob => j.stage === 'tune');
    expect(tunes.length).toBe(2 * 2 * 2 * 3 * 2);
    const at = (eta: number) => tunes.find((j) => j.backbone === 'g0' && j.label.startsWith('lp') && j.fraction === 1 && j.seed === 1 && j.eta === eta)!;
    expect(at(0)).toMatchObject({ key: 'tune/g0/synth/lp/f1/s1/eta0', label: 'lp', params: { epochs: 3 } });
    expect(at(0).params.downstreamNoise).toBeUndefined();
    expect(at(0.2)).toMatchObject({ key: 'tune/g0/synth/lp/f1/s1/eta20', label: 'lp-eta20', title: expect.stringContaining('η=20 %'), params: { epochs: 3, downstreamNoise: { eta: 0.2, semantics: 'other-class', seed: 5 } } });
    // The labels files are as given: η changes only what the fit trains on, not the sets.
    expect(at(0.2).train).toEqual(at(0).train);
  });

  it('ft and lora fits wait for the backbone and the derived target datasets, not for feature extraction', () => {
    const facts: ProjectFacts = { datasets: new Map([['d', { kind: 'images', hasSplit: true, classes: 2 }]]), backbones: new Map() };
    const spec = parseStudySpec(
      {
        name: 'wb',
        pretrain: { dataset: 'd', gammas: [0], seeds: [0] },
        tasks: [{ id: 't', dataset: 'd' }],
        ood: [{ id: 'o', source: 't', targets: [{ corruption: 'gaussian-noise', severity: 2 }] }],
        methods: [{ method: 'lp' }, { method: 'ft' }, { method: 'lora' }],
      },
      's',
    );
    const { jobs } = expandStudy(spec, facts);
    const key = (stage: string) => jobs.filter((j) => j.stage === stage).map((j) => j.key);
    const [pretrain] = key('pretrain');
    const [domain] = key('domains');
    const tune = (m: string) => jobs.find((j): j is TuneStudyJob => j.stage === 'tune' && j.method === m)!;
    expect(tune('lp').deps.every((d) => d.startsWith('features/'))).toBe(true);
    expect(tune('lp').deps).toHaveLength(2);
    for (const m of ['ft', 'lora']) expect(tune(m).deps.sort()).toEqual([domain, pretrain].sort());
  });

  it('names the key, what was expected and a fix', () => {
    const raw = { name: 'x', backbones: [{ id: 'g0' }], tasks: [{ id: 't', dataset: 'd' }], methods: [{ method: 'lp' }] };
    expect(() => parseStudySpec({ ...raw, extra: 1 }, 'spec.yaml')).toThrow(/spec\.yaml is not a valid study spec:\n {2}extra: unknown key/);
    expect(() => parseStudySpec({ ...raw, fractions: [1.5] }, 'spec.yaml')).toThrow(/fractions\[0\]: must be at most 1, got 1\.5/);
    expect(() => parseStudySpec({ ...raw, seeds: '0-2' }, 'spec.yaml')).toThrow(/seeds: expected array, got "0-2"; ranges are written as a list, e\.g\. \[0, 1, 2\]/);
    expect(() => parseStudySpec({ ...raw, tasks: [{ id: 't', dataset: 'd', tset: 'test' }] }, 'spec.yaml')).toThrow(/tasks\[0\]\.tset: unknown key; did you mean "test"\?/);
    expect(() => parseStudySpec({ ...raw, pretrain: { dataset: 'd', gammas: [0, 30] } }, 'spec.yaml')).toThrow(/pretrain\.gammas\[1\]: must be at most 1, got 30; noise ratios are fractions in \[0, 1\] \(30 % is 0\.3\)/);
    expect(() => expandStudy(parseStudySpec({ ...raw, methods: [{ method: 'lp' }, { method: 'lp' }] }, 's'), { datasets: new Map([['d', { kind: 'images', hasSplit: true, classes: 2 }]]), backbones: new Map([['g0', { gamma: 0 }]]) })).toThrow(
      /methods: "lp" appears twice; give each method a distinct label/,
    );
    expect(() => expandStudy(parseStudySpec(raw, 's'), noFacts)).toThrow(/backbones\[0\]\.id: no backbone "g0" in the project[\s\S]*tasks\[0\]\.dataset: no dataset "d" in the project \(import one with `nmlab dataset import`\)/);
  });

  it('expands a study on project objects into a graph: one fit per backbone × task × method × fraction × seed × η serves the ID test and every OOD target', () => {
    const facts: ProjectFacts = {
      datasets: new Map([
        ['fm', { kind: 'images', hasSplit: true, classes: 10 }],
        ['other', { kind: 'images', hasSplit: true, classes: 10 }],
      ]),
      backbones: new Map([['imported', { gamma: 0.1 }]]),
    };
    const spec = parseStudySpec(
      {
        name: 'graph',
        backbones: [{ id: 'imported' }],
        pretrain: { dataset: 'fm', gammas: [0, 0.2], seeds: [0, 1] },
        tasks: [{ id: 'fm', dataset: 'fm' }],
        ood: [{ id: 'fm-ood', source: 'fm', targets: [{ corruption: 'rotation', severity: 3 }, { dataset: 'other' }] }],
        methods: [{ method: 'lp' }, { method: 'mlp' }],
        seeds: [0, 1],
        eta: [0, 0.2],
      },
      'graph',
    );
    const { jobs } = expandStudy(spec, facts);
    const count = (stage: string) => jobs.filter((j) => j.stage === stage).length;
    // 2 γ noise draws; 2 γ × 2 replicates; 1 corruption domain; 5 backbones × 3 datasets.
    expect([count('noise'), count('pretrain'), count('domains'), count('features'), count('spectrum')]).toEqual([2, 4, 1, 15, 5]);
    // 5 backbones × 1 ID task × 2 methods × 1 fraction × 2 seeds × 2 η — no separate OOD fits.
    expect(count('tune')).toBe(5 * 2 * 2 * 2);
    const byKey = new Map(jobs.map((j) => [j.key, j]));
    // Every dependency exists and comes earlier (the queue relies on it).
    for (const j of jobs) for (const d of j.deps) expect(byKey.get(d)!.index).toBeLessThan(j.index);
    const fit = jobs.find((j): j is TuneStudyJob => j.stage === 'tune' && j.replicate === 1 && j.gamma === 0.2 && j.eta === 0.2 && j.method === 'mlp' && j.seed === 0)!;
    expect(fit.label).toBe('mlp-eta20');
    expect(fit.oodTasks).toEqual(['fm-ood']);
    expect(fit.targets.map((t) => t.name)).toEqual(['fm-ood:rotation-3', 'fm-ood:other']);
    expect(fit.train).toMatchObject({ dataset: 'fm', split: 'train' });
    // η is drawn inside the fit, with the authors' semantics by default.
    expect(fit.params.downstreamNoise).toEqual({ eta: 0.2, semantics: 'any-class', seed: null });
    expect(fit.test).toMatchObject({ dataset: 'fm', split: 'test' });
    // The fit waits for its backbone's features of the task and of every target.
    expect(fit.deps.map((d) => byKey.get(d)!.stage)).toEqual(['features', 'features', 'features']);
    const pre = byKey.get(byKey.get(fit.deps[0])!.deps[0])!;
    expect(pre).toMatchObject({ stage: 'pretrain', gamma: 0.2, seed: 1 });
    // The imported backbone's γ comes from its metadata.
    expect(jobs.find((j) => j.stage === 'tune' && j.backbone === 'imported')).toMatchObject({ gamma: 0.1, replicate: null });
    // The same spec expands to the same keys (a resumed study finds its jobs; derived ids are shared).
    expect(expandStudy(spec, facts).jobs.map((j) => j.key)).toEqual(jobs.map((j) => j.key));
  });
});

describe('running an experiment', () => {
  it('runs LP on the fixture in workers: accuracy within 1 point of scikit-learn, run folders complete, comparison = mean ± std of the results', async () => {
    const api = createDirectClient(backend);
    const events: ExperimentEvent[] = [];
    const stop = backend.onEvent('experiment', (e) => events.push(e));
    const created = await api.experiments.create({
      projectDir: project,
      start: true,
      spec: {
        name: 'LP vs sklearn',
        backbones: [{ id: 'g0' }],
        embeddings: [
          {
            id: 'fixture',
            train: { features: 'features/{backbone}/fixture/train.npy', labels: 'features/{backbone}/fixture/train.labels.npy' },
            test: { features: 'features/{backbone}/fixture/test.npy', labels: 'features/{backbone}/fixture/test.labels.npy' },
          },
        ],
        methods: [{ method: 'lp' }],
        seeds: [0, 1],
      },
    });
    const id = created.summary.id;
    expect(id).toBe('lp-vs-sklearn');
    await backend.experiments.waitIdle(project, id);
    stop();
    const d = await api.experiments.get({ projectDir: project, id });
    expect(d.summary.counts.succeeded).toBe(3);

    const accs: number[] = [];
    const fits = d.jobs.filter((j) => j.stage === 'tune');
    expect(fits.length).toBe(2);
    for (const job of fits) {
      if (job.stage !== 'tune') continue;
      // The queue names the run as `nmlab worker` and a Slurm task do: <experiment>.j<index, 4 digits>.a<attempt>.
      expect(job.runId).toBe(`lp-vs-sklearn.j${String(job.index).padStart(4, '0')}.a1`);
      expect(job.runIds).toEqual([job.runId]);
      const dir = join(project, 'runs', job.runId!);
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'log.txt', 'metrics.jsonl', 'result.json', 'status.json']);
      const result = JSON.parse(await readFile(join(dir, 'result.json'), 'utf8'));
      expect(Math.abs(result.test.accuracy - meta.sklearnAccuracy)).toBeLessThanOrEqual(0.01);
      expect(result.params).toMatchObject({ method: 'lp', epochs: 30, lr: 0.01, seed: job.seed });
      accs.push(result.test.accuracy);
      // 500 rows, batch 128 → 4 steps per epoch, 30 epochs: every step's loss is on disk.
      const points = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
      expect(points.filter((p) => p.series === 'loss').map((p) => p.step)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
      expect(points.filter((p) => p.series === 'epoch').length).toBe(30);
      const detail = await api.runs.get({ projectDir: project, id: job.runId! });
      expect(detail.summary).toMatchObject({ status: 'succeeded', experimentId: id, jobKey: job.key, accuracy: result.test.accuracy });
      // The spectrum of Z is descending and its SVE is the entropy of the normalised values (paper eq. 2).
      const s = detail.result!.singularValues;
      for (let i = 1; i < s.length; i++) expect(s[i]).toBeLessThanOrEqual(s[i - 1]);
    }

    // Independent recomputation of mean ± sample std from the result files.
    const c = await api.experiments.compare({ projectDir: project, id });
    expect(c.rows.length).toBe(1);
    const mean = (accs[0] + accs[1]) / 2;
    const std = Math.sqrt(((accs[0] - mean) ** 2 + (accs[1] - mean) ** 2) / 1);
    expect(c.rows[0].accuracy!.mean).toBeCloseTo(mean, 12);
    expect(c.rows[0].accuracy!.std).toBeCloseTo(std, 12);
    expect(c.rows[0].accuracy!.n).toBe(2);
    const csv = compareToCsv(c).trim().split('\n');
    expect(csv[0].split(',').slice(0, 9)).toEqual(['backbone', 'gamma', 'task', 'taskType', 'method', 'fraction', 'seeds', 'accuracy_mean', 'accuracy_std']);
    expect(Number(csv[1].split(',')[7])).toBeCloseTo(mean, 12);

    // Live events arrived, coalesced, and the last one of each job reports it complete.
    const live = events.filter((e): e is Extract<ExperimentEvent, { type: 'live' }> => e.type === 'live');
    for (const job of fits) {
      const mine = live.filter((e) => e.key === job.key);
      expect(mine.length).toBeGreaterThan(0);
      const last = mine.filter((e) => e.progress).at(-1)!;
      expect(last.progress!.done).toBe(last.progress!.total);
      expect(mine.flatMap((e) => e.points).some((p) => p.series === 'loss')).toBe(true);
    }
    expect(events.filter((e) => e.type === 'queue').at(-1)).toMatchObject({ summary: { active: false, counts: { succeeded: 3 } } });
    // The aggregation wrote the same comparison into the study's folder.
    const agg = JSON.parse(await readFile(join(project, 'experiments', id, 'compare.json'), 'utf8'));
    expect(agg.rows[0].accuracy.mean).toBeCloseTo(mean, 12);
  }, 180_000);
});
