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
import { parse as parseYaml } from 'yaml';
import { createDirectClient, createLabBackend, type LabBackend } from '../../src/core/backend';
import { parseSpec } from '../../src/core/experiments/store';
import { ExperimentSpec, compareToCsv, expandSpec, presetSpec, tasksFromLayout, type ExperimentEvent } from '../../src/shared/contract/experiments';
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
tasks:
  - { type: id, id: synth, train: { features: "features/{backbone}/synth/train.npy", labels: "features/{backbone}/synth/train.labels.npy" },
      test: { features: "features/{backbone}/synth/test.npy", labels: "features/{backbone}/synth/test.labels.npy" } }
methods: [{ method: lp }, { method: nmtune, preset: reference, params: { epochs: 2 } }]
fractions: [0.5, 1]
seeds: [0, 1, 2]
defaults: { epochs: 3 }
`;
  it('parses YAML, fills defaults and expands backbones × tasks × methods × fractions × seeds', () => {
    const spec = parseSpec(parseYaml(yaml), 'spec.yaml');
    expect(spec.preset).toBe('custom');
    const jobs = expandSpec(spec);
    expect(jobs.length).toBe(2 * 1 * 2 * 2 * 3);
    expect(new Set(jobs.map((j) => j.key)).size).toBe(jobs.length);
    expect(jobs[0]).toMatchObject({ key: 'g0/synth/lp/f0.5/s0', backbone: 'g0', gamma: 0, baseMethod: 'lp', params: { epochs: 3 }, train: { features: 'features/g0/synth/train.npy' } });
    const nm = jobs.find((j) => j.backbone === 'g30' && j.method === 'nmtune-reference' && j.fraction === 1 && j.seed === 2)!;
    // The method's own override wins over the spec's defaults.
    expect(nm.params).toEqual({ epochs: 2 });
    expect(nm.test?.labels).toBe('features/g30/synth/test.labels.npy');
  });

  it('rejects unknown fields, bad values and duplicate labels with the path in the message', () => {
    expect(() => parseSpec({ ...parseYaml(yaml), extra: 1 }, 'spec.yaml')).toThrow(/spec\.yaml .*extra/);
    expect(() => parseSpec({ ...parseYaml(yaml), fractions: [1.5] }, 'spec.yaml')).toThrow(/fractions\.0/);
    expect(() => parseSpec({ ...parseYaml(yaml), methods: [{ method: 'lp' }, { method: 'lp' }] }, 'spec.yaml')).toThrow(/two methods called "lp"/);
  });

  it('presets lay out the paper: noise study over γ, method comparison over 3 seeds', async () => {
    const layout = await backend.handlers.experiments.layout({ projectDir: project });
    expect(layout.backbones.map((b) => [b.id, b.gamma])).toEqual([['g0', 0], ['g30', 0.3]]);
    const tasks = tasksFromLayout(layout, ['synth']);
    expect(tasks.map((t) => `${t.type}:${t.id}`)).toEqual(['id:synth', 'ood:synth-ood']);
    const noise = ExperimentSpec.parse(presetSpec('noise-study', { backbones: layout.backbones.map(({ id, gamma }) => ({ id, gamma })), tasks }));
    expect(noise.methods.map((m) => m.method)).toEqual(['lp', 'mlp', 'nmtune']);
    expect(expandSpec(noise).length).toBe(2 * 2 * 3);
    const table = ExperimentSpec.parse(presetSpec('method-comparison', { backbones: [{ id: 'g0' }], tasks }));
    expect(table.seeds).toEqual([0, 1, 2]);
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
        tasks: [
          {
            type: 'id',
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
    expect(d.summary.counts.succeeded).toBe(2);

    const accs: number[] = [];
    for (const job of d.jobs) {
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
    for (const job of d.jobs) {
      const mine = live.filter((e) => e.key === job.key);
      expect(mine.length).toBeGreaterThan(0);
      const last = mine.filter((e) => e.progress).at(-1)!;
      expect(last.progress!.done).toBe(last.progress!.total);
      expect(mine.flatMap((e) => e.points).some((p) => p.series === 'loss')).toBe(true);
    }
    expect(events.filter((e) => e.type === 'queue').at(-1)).toMatchObject({ summary: { active: false, counts: { succeeded: 2 } } });
  }, 180_000);
});
