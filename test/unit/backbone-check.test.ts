/**
 * Issue 10 item 5: checking a backbone's preprocessing on a dataset sample. A hand-built ONNX
 * model "trained on normalised inputs" (its classifier is the sign of the summed normalised
 * pixels) meets a two-level image dataset whose statistics are known in closed form: pixels
 * 60 (class 0) and 100 (class 1), so scale 1/255 gives mean 80/255 and std 20/255.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attr, encodeModel, valueInfo } from '../../src/core/onnx/builder';
import { ProjectService } from '../../src/core/projects';
import { writeDataset } from '../../src/core/datasets/store';
import { checkPreprocessing } from '../../src/core/features/check';
import { PreprocessCheck } from '../../src/shared/contract/backbonesService';

let tmp: string;
let project: string;
let model: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-bbcheck-'));
  project = join(tmp, 'proj');
  await new ProjectService({ home: join(tmp, 'home') }).create(project, 'check');
  const n = 40;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  const pixels = new Uint8Array(n * 16);
  labels.forEach((y, i) => pixels.fill(y ? 100 : 60, i * 16, (i + 1) * 16));
  await writeDataset(project, 'levels', { name: 'levels', kind: 'images', source: { type: 'idx', images: 'x', labels: 'y' }, classes: ['dark', 'bright'], domains: ['default'], image: { height: 4, width: 4, channels: 1 } }, { labels, images: { count: n, height: 4, width: 4, channels: 1, pixels } });
  // features = flatten(x) (16 wide); logits = features · W with W[:,0] = -1/16, W[:,1] = +1/16.
  const w = new Float32Array(32);
  for (let i = 0; i < 16; i++) [w[2 * i], w[2 * i + 1]] = [-1 / 16, 1 / 16];
  model = join(tmp, 'tiny.onnx');
  await writeFile(
    model,
    encodeModel({
      graph: {
        name: 'tiny',
        inputs: [valueInfo('x', 'float32', ['n', 1, 4, 4])],
        outputs: [valueInfo('features', 'float32', ['n', 16]), valueInfo('logits', 'float32', ['n', 2])],
        initializers: [{ name: 'W', dataType: 'float32', dims: [16, 2], data: w }],
        nodes: [
          { opType: 'Flatten', inputs: ['x'], outputs: ['features'], attributes: { axis: attr.int(1) } },
          { opType: 'MatMul', inputs: ['features', 'W'], outputs: ['logits'] },
        ],
      },
    }),
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('checkPreprocessing', () => {
  it('scale 1/255, mean 0, std 1 on a model trained on normalised inputs: the input statistics, chance accuracy and a warning with the fix', async () => {
    const r = PreprocessCheck.parse(await checkPreprocessing(project, 'levels', { onnxFile: model }, { outputNode: 'features', sample: 40 }));
    expect(r.rows).toBe(40);
    expect(r.split).toBe('all');
    expect(r.channels).toHaveLength(1);
    expect(r.channels[0].mean).toBeCloseTo(80 / 255, 6);
    expect(r.channels[0].std).toBeCloseTo(20 / 255, 6);
    expect(r.channels[0].min).toBeCloseTo(60 / 255, 6);
    expect(r.channels[0].max).toBeCloseTo(100 / 255, 6);
    // Every summed input is positive, so every sample is called "bright": half right.
    expect(r.classifier).toEqual({ node: 'logits', accuracy: 0.5, chance: 0.5, rows: 40, numClasses: 2 });
    expect(r.suggested!.mean[0]).toBeCloseTo(80 / 255, 4);
    expect(r.suggested!.std[0]).toBeCloseTo(20 / 255, 4);
    expect(r.suggested!.accuracy).toBe(1);
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toMatch(/per-channel mean 0\.314 and std 0\.078; models trained on normalised inputs expect about 0 and 1\. If this one was, use mean 0\.3137 and std 0\.0784/);
    expect(r.warnings[1]).toMatch(/output "logits" classifies 50\.0 % of 40 samples right, near chance \(50\.0 %\).*with the suggested mean\/std it scores 100\.0 %/);
  });

  it('with the dataset normalisation: mean 0, std 1, full accuracy and no warning', async () => {
    const r = await checkPreprocessing(project, 'levels', { onnxFile: model }, { outputNode: 'features', preprocess: { mean: [80 / 255], std: [20 / 255] } });
    expect(r.channels[0].mean).toBeCloseTo(0, 5);
    expect(r.channels[0].std).toBeCloseTo(1, 5);
    expect(r.classifier!.accuracy).toBe(1);
    expect(r.suggested).toBeNull();
    expect(r.warnings).toEqual([]);
  });

  it('unscaled pixels are called out', async () => {
    const r = await checkPreprocessing(project, 'levels', { onnxFile: model }, { outputNode: 'features', preprocess: { scale: 1 } });
    expect(r.channels[0].max).toBe(100);
    expect(r.warnings[0]).toMatch(/the model input reaches 100\.000: pixels look unscaled \(0–255\)/);
  });
});
