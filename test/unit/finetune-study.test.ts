/**
 * ft and lora as study methods: a study's `tune` job with method ft or lora trains the project
 * backbone on the project dataset's images (src/core/jobs/kinds/finetune.ts), and the study's
 * comparison reads its result like a black-box fit's (a row per method).
 */
import { describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy } from '../../src/core/arrays/npy';
import { writeDataset } from '../../src/core/datasets/store';
import { compareFits } from '../../src/core/experiments/compare';
import { createRun, writeRunJson } from '../../src/core/runs/store';
import { importBackbone } from '../../src/core/features/backbone';
import { finetuneFit } from '../../src/core/jobs/kinds/finetune';
import { ProjectService } from '../../src/core/projects/service';
import { StudyMethod, type TuneStudyJob } from '../../src/shared/contract/study';
import type { QueueEntry } from '../../src/shared/contract/experiments';

const fixtures = join(__dirname, '..', 'fixtures', 'finetune');

describe('ft and lora in a study', () => {
  it('accepts ft and lora as method columns', () => {
    expect(StudyMethod.parse({ method: 'lora', params: { lr: 1e-2 } })).toMatchObject({ method: 'lora', preset: 'paper' });
    expect(() => StudyMethod.parse({ method: 'full' })).toThrow();
  });

  it('a tune job with method ft or lora trains the backbone on the images; the comparison has a row per method', async () => {
    const home = await mkdtemp(join(tmpdir(), 'nmlab-ft-study-home-'));
    const dir = await mkdtemp(join(tmpdir(), 'nmlab-ft-study-'));
    await new ProjectService({ home }).create(dir, 'white-box study');
    // The fixture's downstream task as one uint8 image dataset with its train/test split.
    const parts = await Promise.all(['train', 'test'].map(async (s) => ({ x: await readNpy(join(fixtures, `${s}_inputs.npy`)), y: await readNpy(join(fixtures, `${s}_labels.npy`)) })));
    const n = parts[0].y.shape[0] + parts[1].y.shape[0];
    const pixels = new Uint8Array(n * 256);
    const labels = new Int32Array(n);
    const split = new Uint8Array(n);
    let at = 0;
    parts.forEach(({ x, y }, p) => {
      const xs = x.data as Float32Array;
      for (let i = 0; i < y.shape[0]; i++, at++) {
        for (let k = 0; k < 256; k++) pixels[at * 256 + k] = Math.max(0, Math.min(255, Math.round(128 + 60 * xs[i * 256 + k])));
        labels[at] = Number((y.data as BigInt64Array)[i]);
        split[at] = p;
      }
    });
    await writeDataset(
      dir,
      'strokes',
      {
        name: 'strokes',
        kind: 'images',
        source: { type: 'image-folder', path: 'synthetic', layout: 'class' },
        classes: ['diag', 'anti', 'hollow', 'checker'],
        domains: ['default'],
        image: { height: 16, width: 16, channels: 1 },
        split: { file: 'split.npy', train: parts[0].y.shape[0], test: parts[1].y.shape[0], method: 'given' },
      },
      { labels, images: { count: n, height: 16, width: 16, channels: 1, pixels }, split },
    );
    await importBackbone(dir, join(fixtures, 'backbone.onnx'), { id: 'tiny-resnet', outputNode: 'features' });

    const job = (method: 'ft' | 'lora', lr: number): TuneStudyJob => ({
      key: `tune/tiny-resnet/strokes/${method}/f1/s0/eta0`,
      index: method === 'ft' ? 0 : 1,
      stage: 'tune',
      title: method,
      deps: [],
      backbone: 'tiny-resnet',
      gamma: 0,
      replicate: null,
      condition: 'tiny-resnet',
      task: 'strokes',
      oodTasks: [],
      method,
      label: method,
      preset: 'paper',
      params: { lr, epochs: 4, batchSize: 32 },
      fraction: 1,
      seed: 0,
      eta: 0,
      train: { name: 'strokes:train', dataset: 'strokes', split: 'train' },
      test: { name: 'strokes:test', dataset: 'strokes', split: 'test' },
      targets: [],
    });
    const jobs = [job('ft', 3e-3), job('lora', 1e-2)];
    const entries: QueueEntry[] = [];
    const accuracy: Record<string, number> = {};
    for (const j of jobs) {
      const runId = `run-${j.method}`;
      await createRun(dir, { id: runId, kind: 'study', experimentId: 'exp', jobKey: j.key, attempt: 1, createdAt: new Date().toISOString() });
      const result = await finetuneFit(dir, j, { log: async () => undefined, progress: () => undefined });
      await writeRunJson(dir, runId, result);
      accuracy[j.method] = result.accuracy;
      entries.push({ key: j.key, state: 'succeeded', priority: 0, attempts: 1, runId, runIds: [runId], error: null, startedAt: null, endedAt: null });
    }
    // The images went through the backbone's preprocessing (x/255): both methods learn the task.
    expect(accuracy.ft).toBeGreaterThan(0.6);
    expect(accuracy.lora).toBeGreaterThan(0.6);
    const c = await compareFits(dir, { experimentId: 'exp', name: 'white-box', preset: 'method-comparison' }, jobs, entries);
    expect(c.finished).toBe(2);
    const rows = c.rows.filter((r) => r.taskType === 'id');
    expect(rows.map((r) => r.method).sort()).toEqual(['ft', 'lora']);
    for (const r of rows) expect(r.accuracy?.mean).toBeCloseTo(accuracy[r.method], 12);

    // η on the training labels: the same draw as the black-box fits (tuning/downstreamNoise.ts).
    const noisy = { ...job('ft', 3e-3), eta: 0.25, params: { lr: 3e-3, epochs: 1, batchSize: 64, downstreamNoise: { eta: 0.25, semantics: 'other-class' as const, seed: null } } };
    const r = await finetuneFit(dir, noisy, { log: async () => undefined, progress: () => undefined });
    expect(r.downstreamNoise).toMatchObject({ eta: 0.25, rows: 384, flipped: 96, realisedFlipRate: 0.25, seed: 0 });
  });
});
