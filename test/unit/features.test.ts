import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy } from '../../src/core/arrays/npy';
import { FeatureExtractor } from '../../src/core/features/extract';
import { importBackbone, loadBackbone, writeBackboneManifest } from '../../src/core/features/backbone';
import { inspectOnnx, sha256File } from '../../src/core/features/onnx';
import { extractDatasetFeatures, FEATURES_FOLDER } from '../../src/core/features/cache';
import { NpyRowWriter } from '../../src/core/features/npyWriter';
import { encodeModel, valueInfo } from '../../src/core/onnx/builder';
import { writeDataset } from '../../src/core/datasets/store';
import { FeaturesJobSpec, type ResolvedPreprocess } from '../../src/shared/contract/backbones';
import { JobSpec } from '../../src/shared/contract/jobs';
import { run as runFeaturesJob } from '../../src/core/jobs/kinds/features';

// Tiny ResNet (Conv, BatchNorm, residual Add, GlobalAveragePool, Gemm) exported by PyTorch
// 1.13 with its own outputs: test/fixtures/onnx/make_resnet_fixture.py.
const fx = join(__dirname, '..', 'fixtures', 'onnx');
const model = join(fx, 'tiny_resnet.onnx');
const f32 = async (name: string) => (await readNpy(join(fx, name))).data as Float32Array;
const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-feat-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('ONNX inspection', () => {
  it('lists inputs and outputs with symbolic batch dims', async () => {
    const insp = await inspectOnnx(model);
    expect(insp.inputs).toEqual([{ name: 'pixels', type: 'float32', shape: ['batch', 1, 16, 16] }]);
    expect(insp.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['features', ['batch', 16]],
      ['logits', ['batch', 10]],
    ]);
    expect(insp.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('names the file for corrupt models', async () => {
    const bad = join(tmp, 'corrupt.onnx');
    await writeFile(bad, (await readFile(model)).subarray(0, 500));
    await expect(inspectOnnx(bad)).rejects.toThrow(/corrupt\.onnx is not a loadable ONNX model/);
    await expect(inspectOnnx(join(tmp, 'missing.onnx'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('parity with PyTorch (1e-4)', () => {
  it('features and logits from preprocessed inputs', async () => {
    const x = await f32('inputs.npy');
    for (const [output, ref] of [['features', 'torch_features.npy'], ['logits', 'torch_logits.npy']] as const) {
      const ex = await FeatureExtractor.open({ onnxFile: model }, { outputNode: output });
      const out = await ex.runTensor(x, [6, 1, 16, 16]);
      expect(maxAbsDiff(out, await f32(ref))).toBeLessThan(1e-4);
      await ex.release();
    }
  });

  it('the whole image path: resize, crop, normalise, run', async () => {
    const cases = JSON.parse(await readFile(join(fx, 'cases.json'), 'utf8')).cases as { name: string; preprocess: ResolvedPreprocess }[];
    for (const c of cases) {
      const imgs = await readNpy(join(fx, `images_${c.name}.npy`));
      const [n, h, w] = imgs.shape;
      const raws = Array.from({ length: n }, (_, i) => ({ height: h, width: w, channels: 1 as const, data: (imgs.data as Uint8Array).subarray(i * h * w, (i + 1) * h * w) }));
      const ex = await FeatureExtractor.open({ onnxFile: model }, { overrides: c.preprocess });
      expect(ex.output.name).toBe('features');
      const out = await ex.runImages(raws);
      expect(maxAbsDiff(out, await f32(`torch_features_${c.name}.npy`))).toBeLessThan(1e-4);
      await ex.release();
    }
  });
});

describe('mismatches give clear errors', () => {
  it('missing output names, wrong input shapes', async () => {
    await expect(FeatureExtractor.open({ onnxFile: model }, { outputNode: 'pool' })).rejects.toThrow(/tiny_resnet\.onnx has no output "pool"; its outputs are "features", "logits"/);
    const ex = await FeatureExtractor.open({ onnxFile: model });
    await expect(ex.runTensor(new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16])).rejects.toThrow(/expects shape \[batch, 1, 16, 16\] but got \[2, 3, 16, 16\]/);
    await ex.release();
    await expect(FeatureExtractor.open({ onnxFile: model }, { overrides: { inputSize: [1, 32, 32] } })).resolves.toBeDefined();
    const ex2 = await FeatureExtractor.open({ onnxFile: model }, { overrides: { inputSize: [1, 32, 32] } }).catch((e: unknown) => e);
    // The size conflict is reported as soon as images need preprocessing.
    expect(() => (ex2 as FeatureExtractor).requirePreprocess()).toThrow(/takes input 1×16×16 .* asks for 1×32×32/);
    await (ex2 as FeatureExtractor).release();
  });

  it('non-finite features name the model, row and column', async () => {
    // y = sqrt(x): a negative input gives NaN.
    const bytes = encodeModel({ graph: { name: 'sqrt', inputs: [valueInfo('x', 'float32', ['n', 4])], outputs: [valueInfo('y', 'float32', ['n', 4])], nodes: [{ opType: 'Sqrt', inputs: ['x'], outputs: ['y'] }] } });
    const f = join(tmp, 'sqrt.onnx');
    await writeFile(f, bytes);
    const ex = await FeatureExtractor.open({ onnxFile: f });
    expect(Array.from(await ex.runTensor(Float32Array.of(1, 4, 9, 16), [1, 4]))).toEqual([1, 2, 3, 4]);
    await expect(ex.runTensor(Float32Array.of(1, 4, 9, 16, 1, 1, -1, 1), [2, 4])).rejects.toThrow(/sqrt\.onnx output "y": non-finite value NaN at row 1, column 2/);
    await ex.release();
  });

  it('a backbone.json whose sha256 or output does not match', async () => {
    const dir = join(tmp, 'bb');
    await mkdir(dir, { recursive: true });
    await copyFile(model, join(dir, 'model.onnx'));
    const sha = await sha256File(model);
    await writeBackboneManifest(join(dir, 'backbone.json'), { schemaVersion: 1, id: 'tiny.test', file: 'model.onnx', sha256: sha, output: { node: 'embedding', featureDim: 16 } });
    const ref = await loadBackbone(dir);
    await expect(FeatureExtractor.open(ref)).rejects.toThrow(/has no output "embedding" \(named in .*backbone\.json\)/);
    await writeBackboneManifest(join(dir, 'backbone.json'), { schemaVersion: 1, id: 'tiny.test', file: 'model.onnx', sha256: sha, output: { node: 'features', featureDim: 32 } });
    await expect(FeatureExtractor.open(await loadBackbone(dir))).rejects.toThrow(/says output "features" has 32 features but .* gives 16/);
  });
});

describe('feature cache in a project', () => {
  it('extracts a dataset in chunks, caches by key, matches per-batch inference, and reuses the cache', async () => {
    const project = join(tmp, 'proj');
    await mkdir(join(project, 'datasets'), { recursive: true });
    const n = 150;
    const pixels = Uint8Array.from({ length: n * 16 * 16 }, (_, i) => (i * 7 + (i >> 8) * 13) % 256);
    const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
    await writeDataset(project, 'toy', { name: 'toy', kind: 'images', source: { type: 'image-folder', path: '/x', layout: 'class' }, classes: ['a', 'b', 'c'], domains: ['default'], image: { height: 16, width: 16, channels: 1 } }, { labels, images: { count: n, height: 16, width: 16, channels: 1, pixels } });
    const bb = await importBackbone(project, model, { id: 'tiny.fixture', preprocess: { mean: [0.5], std: [0.25] }, license: 'MIT' });
    expect(bb).toMatchObject({ id: 'tiny.fixture', output: { node: 'features', featureDim: 16 }, input: { node: 'pixels' } });
    const progress: number[] = [];
    const r = await extractDatasetFeatures(project, { backbone: 'backbones/tiny.fixture', dataset: 'toy', batchSize: 16, onProgress: (d) => progress.push(d) });
    expect(r.cached).toBe(false);
    expect(r.meta).toMatchObject({ count: n, featureDim: 16, dataset: 'toy', output: 'features', backbone: { id: 'tiny.fixture' } });
    expect(progress.at(-1)).toBe(n);
    expect(progress.length).toBeGreaterThan(8);
    const saved = await readNpy(r.path);
    expect(saved.shape).toEqual([n, 16]);
    // Reference: one big batch through the same model with the same preprocessing.
    const ex = await FeatureExtractor.open({ onnxFile: model }, { overrides: { mean: [0.5], std: [0.25] } });
    const whole = await ex.runImages(Array.from({ length: n }, (_, i) => ({ height: 16, width: 16, channels: 1 as const, data: pixels.subarray(i * 256, (i + 1) * 256) })));
    await ex.release();
    expect(maxAbsDiff(saved.data as Float32Array, whole)).toBeLessThan(1e-5);
    const again = await extractDatasetFeatures(project, { backbone: 'backbones/tiny.fixture', dataset: 'toy' });
    expect(again.cached).toBe(true);
    expect(again.meta.key).toBe(r.meta.key);
    const other = await extractDatasetFeatures(project, { backbone: 'backbones/tiny.fixture', dataset: 'toy', overrides: { std: [0.5] } });
    expect(other.meta.key).not.toBe(r.meta.key);
    expect((await readdir(join(project, FEATURES_FOLDER))).filter((f) => f.endsWith('.npy')).length).toBe(2);
  });

  it('a cancelled extraction leaves no cache file', async () => {
    const project = join(tmp, 'proj');
    const ac = new AbortController();
    const err = await extractDatasetFeatures(project, { backbone: 'backbones/tiny.fixture', dataset: 'toy', batchSize: 8, force: true, overrides: { std: [0.3] }, signal: ac.signal, onProgress: (d) => d >= 16 && ac.abort() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CANCELLED' });
    const files = await readdir(join(project, FEATURES_FOLDER));
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.npy')).length).toBe(2);
  });

  it('runs as the features job kind with progress, and the spec parses through the contract', async () => {
    const project = join(tmp, 'proj');
    const spec = JobSpec.parse({ kind: 'features', projectDir: project, backbone: 'backbones/tiny.fixture', dataset: 'toy', batchSize: 50, force: true });
    expect(spec.kind).toBe('features');
    const progress: [number, number][] = [];
    const ctx = { jobId: 'j1', signal: new AbortController().signal, progress: (d: number, t: number) => progress.push([d, t]), metric: () => undefined, log: () => undefined };
    const result = (await runFeaturesJob(FeaturesJobSpec.parse(spec), ctx)) as { count: number; featureDim: number; cached: boolean; file: string };
    expect(result).toMatchObject({ count: 150, featureDim: 16, cached: false });
    expect(progress).toEqual([[0, 150], [50, 150], [100, 150], [150, 150]]);
    expect((await readNpy(join(project, result.file))).shape).toEqual([150, 16]);
  });

  it('refuses a model whose sha256 differs from its backbone.json', async () => {
    const project = join(tmp, 'proj');
    const dir = join(project, 'backbones', 'tampered');
    await mkdir(dir, { recursive: true });
    await copyFile(model, join(dir, 'model.onnx'));
    await writeBackboneManifest(join(dir, 'backbone.json'), { schemaVersion: 1, id: 'tampered', file: 'model.onnx', sha256: '0'.repeat(64), output: { node: 'features', featureDim: 16 } });
    await expect(extractDatasetFeatures(project, { backbone: 'backbones/tampered', dataset: 'toy' })).rejects.toThrow(/model\.onnx has changed since .*backbone\.json was written/);
    await expect(extractDatasetFeatures(project, { backbone: '../outside', dataset: 'toy' })).rejects.toMatchObject({ code: 'PATH_ESCAPE' });
  });

  it('NpyRowWriter output reads back and refuses short writes', async () => {
    const f = join(tmp, 'w.npy');
    const w = await NpyRowWriter.create(f, 3, 2);
    await w.append(Float32Array.of(1, 2, 3, 4));
    await w.append(Float32Array.of(5, 6));
    await w.close();
    expect(Array.from((await readNpy(f)).data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    const w2 = await NpyRowWriter.create(join(tmp, 'short.npy'), 3, 2);
    await w2.append(Float32Array.of(1, 2));
    await expect(w2.close()).rejects.toThrow(/1 of 3 rows/);
    expect((await readdir(tmp)).some((x) => x.startsWith('short.npy') || x.includes('short.npy.'))).toBe(false);
  });
});
