/**
 * `nmlab features`: run an ONNX backbone over images or a preprocessed tensor batch and write
 * the features as `.npy` (float32, C order), streamed batch by batch.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type CliIO, type Command, type ParsedCommandArgs } from '../command';
import type { PreprocessSpec } from '../../shared/contract/backbones';
import { NmlabError } from '../../shared/errors';
import { readNpyHeader, readNpyRows } from '../../core/arrays/npy';
import { readIdxImages } from '../../core/datasets/idx';
import { loadBackbone } from '../../core/features/backbone';
import { FeatureExtractor } from '../../core/features/extract';
import { checkPreprocessing } from '../../core/features/check';
import { requireProject } from '../../core/projects/manifest';
import { inspectOnnx } from '../../core/features/onnx';
import { NpyRowWriter } from '../../core/features/npyWriter';
import { IMAGE_EXTENSIONS, readImageFile } from '../../core/images/decode';
import { imageAt, type RawImage } from '../../core/images/image';

const USAGE = `Usage: nmlab features --backbone MODEL --inspect [--json]
       nmlab features --backbone MODEL --check --project DIR --dataset ID [--classifier NAME] [--sample N]
                      [preprocessing flags as below] [--json]
       nmlab features --backbone MODEL (--inputs X.npy | --images DIR | --idx FILE) --out F.npy
                      [--output NAME] [--input NAME] [--size N | --size HxW] [--mean a,b,c] [--std a,b,c]
                      [--layout nchw|nhwc] [--crop-pct P] [--scale S] [--interpolation bilinear|nearest]
                      [--batch-size B] [--threads T] [--json]

Runs an ONNX backbone with onnxruntime-node and writes its features as a float32 .npy (N×D).

  --backbone MODEL   an .onnx file, a backbone.json, or a folder holding backbone.json
  --inspect          print the model's inputs and outputs (names, types, shapes), sha256 and backbone.json
  --check            run the preprocessing on --sample N (default 256) images of project dataset
                     --dataset: per-channel mean/std of the model input, the accuracy of a
                     classification output as wide as the class count (or --classifier NAME),
                     and warnings when they look wrong (e.g. an unnormalised input)
  --inputs X.npy     an already preprocessed float32 batch, batch first (fed as is)
  --images DIR       PNG/JPEG files under DIR (recursively), in sorted path order
  --idx FILE         MNIST-style IDX images (gzipped or not)
  --output NAME      model output to read (default: backbone.json's, else the first)
  --input NAME       model input to feed (default: the only one)

Preprocessing (images only) resolves as these flags, then backbone.json, then the model's
input shape, then defaults (mean 0, std 1, scale 1/255, crop-pct 1, bilinear, layout from
the model): resize shorter side to size/crop-pct, centre-crop, (x·scale − mean)/std.
`;

function numList(args: ParsedCommandArgs, name: string): number[] | undefined {
  const v = stringOpt(args, name);
  if (v === undefined) return undefined;
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} must be comma-separated numbers, got "${v}"`);
  return out;
}

/** Preprocessing overrides from the shared flags (also used by `nmlab dataset`/`demo`). */
export function preprocessFlags(args: ParsedCommandArgs): PreprocessSpec {
  const o: PreprocessSpec = {};
  const size = stringOpt(args, 'size');
  if (size !== undefined) {
    const m = /^(\d+)(?:x(\d+))?$/.exec(size);
    if (!m) throw new UsageError(`--size must be N or HxW, got "${size}"`);
    // Channels come from the model; 0 here is replaced below once it is known.
    o.inputSize = [0, Number(m[1]), Number(m[2] ?? m[1])];
  }
  const mean = numList(args, 'mean');
  if (mean) o.mean = mean;
  const std = numList(args, 'std');
  if (std) {
    if (std.some((s) => s <= 0)) throw new UsageError('--std values must be positive');
    o.std = std;
  }
  const layout = stringOpt(args, 'layout');
  if (layout !== undefined) {
    if (layout !== 'nchw' && layout !== 'nhwc') throw new UsageError(`--layout must be nchw or nhwc, got "${layout}"`);
    o.layout = layout;
  }
  const crop = numberOpt(args, 'crop-pct');
  if (crop !== undefined) {
    if (!(crop > 0 && crop <= 1)) throw new UsageError('--crop-pct must be in (0, 1]');
    o.cropPct = crop;
  }
  const scale = numberOpt(args, 'scale');
  if (scale !== undefined) o.scale = scale;
  const interp = stringOpt(args, 'interpolation');
  if (interp !== undefined) {
    if (interp !== 'bilinear' && interp !== 'nearest') throw new UsageError(`--interpolation must be bilinear or nearest, got "${interp}"`);
    o.interpolation = interp;
  }
  return o;
}

/** Fill a `--size` override's channel count from the model input (or 3 when unknown). */
function withChannels(o: PreprocessSpec, fx: { input: { shape: (number | string | null)[] } }, fallback?: PreprocessSpec): PreprocessSpec {
  if (!o.inputSize || o.inputSize[0] !== 0) return o;
  const s = fx.input.shape;
  const c = [s[1], s[3]].find((d) => d === 1 || d === 3) ?? fallback?.inputSize?.[0] ?? 3;
  return { ...o, inputSize: [c as number, o.inputSize[1], o.inputSize[2]] };
}

async function check(io: CliIO, args: ParsedCommandArgs): Promise<number> {
  const project = requireOpt(args, 'project');
  const dataset = requireOpt(args, 'dataset');
  const sample = numberOpt(args, 'sample') ?? 256;
  if (!Number.isInteger(sample) || sample < 1) throw new UsageError('--sample must be a positive integer');
  requireProject(project);
  const ref = await loadBackbone(requireOpt(args, 'backbone'));
  const r = await checkPreprocessing(project, dataset, ref, {
    outputNode: stringOpt(args, 'output'),
    classifierNode: stringOpt(args, 'classifier'),
    preprocess: withChannels(preprocessFlags(args), { input: (await inspectOnnx(ref.onnxFile)).inputs[0] ?? { shape: [] } }, ref.manifest?.preprocess),
    sample,
    threads: numberOpt(args, 'threads'),
  });
  if (args.values.json === true) {
    printJson(io, r);
    return 0;
  }
  const f = (v: number) => v.toFixed(3);
  io.out(`${r.rows} images of "${r.dataset}" (${r.split === 'test' ? 'test split' : 'all rows'}), preprocessed to ${r.preprocess.inputSize.join('×')} ${r.preprocess.layout}\n`);
  r.channels.forEach((c, i) => io.out(`  channel ${i}: mean ${f(c.mean)}  std ${f(c.std)}  min ${f(c.min)}  max ${f(c.max)}\n`));
  if (r.classifier) io.out(`  classifier "${r.classifier.node}": ${(100 * r.classifier.accuracy).toFixed(1)} % top-1 (chance ${(100 * r.classifier.chance).toFixed(1)} %)\n`);
  else io.out('  no classification output as wide as the class count (name one with --classifier)\n');
  if (r.suggested) io.out(`  suggested: --mean ${r.suggested.mean.join(',')} --std ${r.suggested.std.join(',')}${r.suggested.accuracy !== null ? ` (classifier: ${(100 * r.suggested.accuracy).toFixed(1)} %)` : ''}\n`);
  for (const w of r.warnings) io.err(`warning: ${w}\n`);
  return 0;
}

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = (await readdir(d, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if ((IMAGE_EXTENSIONS as readonly string[]).includes(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

export const featuresCommand: Command = {
  name: 'features',
  summary: 'extract features with an ONNX backbone into a .npy',
  usage: USAGE,
  options: {
    backbone: { type: 'string' },
    inputs: { type: 'string' },
    images: { type: 'string' },
    idx: { type: 'string' },
    output: { type: 'string' },
    input: { type: 'string' },
    size: { type: 'string' },
    mean: { type: 'string' },
    std: { type: 'string' },
    layout: { type: 'string' },
    'crop-pct': { type: 'string' },
    scale: { type: 'string' },
    interpolation: { type: 'string' },
    'batch-size': { type: 'string' },
    threads: { type: 'string' },
    inspect: { type: 'boolean' },
    check: { type: 'boolean' },
    project: { type: 'string' },
    dataset: { type: 'string' },
    classifier: { type: 'string' },
    sample: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    if (args.values.inspect === true) return inspect(io, requireOpt(args, 'backbone'), args.values.json === true);
    if (args.values.check === true) return check(io, args);
    const sources = ['inputs', 'images', 'idx'].filter((k) => stringOpt(args, k) !== undefined);
    if (sources.length !== 1) throw new UsageError('give exactly one of --inputs, --images, --idx');
    const out = requireOpt(args, 'out');
    const batchSize = numberOpt(args, 'batch-size') ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError('--batch-size must be a positive integer');
    const threads = numberOpt(args, 'threads');
    const flags = preprocessFlags(args);
    const ref = await loadBackbone(requireOpt(args, 'backbone'));
    const t0 = performance.now();
    // Open once to learn the input's channels for --size, then with the final overrides.
    let fx = await FeatureExtractor.open(ref, { outputNode: stringOpt(args, 'output'), inputNode: stringOpt(args, 'input'), overrides: {}, threads });
    const overrides = withChannels(flags, fx, ref.manifest?.preprocess);
    await fx.release();
    fx = await FeatureExtractor.open(ref, { outputNode: stringOpt(args, 'output'), inputNode: stringOpt(args, 'input'), overrides, threads });
    let writer: NpyRowWriter | undefined;
    let count = 0;
    let files: string[] | undefined;
    try {
      if (stringOpt(args, 'inputs') !== undefined) {
        const file = stringOpt(args, 'inputs')!;
        const header = await readNpyHeader(file);
        if (header.dtype !== 'float32') throw new NmlabError('BAD_FILE', `${file} is ${header.dtype}; --inputs takes a float32 batch (np.float32)`);
        if (header.shape.length < 2) throw new NmlabError('BAD_FILE', `${file} has shape (${header.shape.join(', ')}); --inputs needs a batch-first tensor`);
        count = header.shape[0];
        for (let s = 0; s < count; s += batchSize) {
          const chunk = await readNpyRows(file, s, batchSize);
          const feats = await fx.runTensor(chunk.data as Float32Array, chunk.shape);
          writer ??= await NpyRowWriter.create(out, count, fx.featureDim!);
          await writer.append(feats);
        }
      } else {
        let get: (i: number) => Promise<RawImage>;
        if (stringOpt(args, 'images') !== undefined) {
          const dir = stringOpt(args, 'images')!;
          if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) throw new NmlabError('NOT_FOUND', `--images ${dir} is not a folder`);
          const list = await listImages(dir);
          if (list.length === 0) throw new NmlabError('BAD_REQUEST', `no PNG or JPEG files under ${dir}`);
          files = list.map((f) => relative(dir, f));
          count = list.length;
          get = (i) => readImageFile(list[i]);
        } else {
          const b = await readIdxImages(stringOpt(args, 'idx')!);
          count = b.count;
          const batch = { ...b, channels: b.channels as 1 | 3 };
          get = async (i) => imageAt(batch, i);
        }
        const dim = await fx.probeFeatureDim();
        writer = await NpyRowWriter.create(out, count, dim);
        for (let s = 0; s < count; s += batchSize) {
          const imgs: RawImage[] = [];
          for (let i = s; i < Math.min(count, s + batchSize); i++) imgs.push(await get(i));
          await writer.append(await fx.runImages(imgs));
          if (!args.values.json) io.err(`\r${Math.min(count, s + batchSize)}/${count} images`);
        }
        if (!args.values.json) io.err('\n');
      }
      if (!writer) throw new NmlabError('BAD_FILE', 'the input holds no samples');
      await writer.close();
    } catch (err) {
      await writer?.abort();
      throw err;
    } finally {
      await fx.release();
    }
    const seconds = (performance.now() - t0) / 1000;
    return report(io, args.values.json === true, {
      out,
      count,
      featureDim: fx.featureDim,
      output: fx.output.name,
      input: fx.input.name,
      backbone: ref.manifest?.id ?? null,
      preprocess: stringOpt(args, 'inputs') !== undefined ? null : fx.preprocess,
      seconds,
      samplesPerSecond: count / seconds,
      ...(files ? { files } : {}),
    });
  },
};

function report(io: CliIO, json: boolean, r: { out: string; count: number; featureDim: number | null; output: string; seconds: number; samplesPerSecond: number } & Record<string, unknown>): number {
  if (json) printJson(io, r);
  else io.out(`wrote ${r.count}×${r.featureDim} features (output "${r.output}") to ${r.out} in ${r.seconds.toFixed(2)} s (${r.samplesPerSecond.toFixed(0)} samples/s)\n`);
  return 0;
}

async function inspect(io: CliIO, path: string, json: boolean): Promise<number> {
  const ref = await loadBackbone(path);
  const insp = await inspectOnnx(ref.onnxFile);
  if (json) {
    printJson(io, { ...insp, manifest: ref.manifest ?? null });
    return 0;
  }
  const dims = (s: (number | string | null)[]) => `[${s.map((d) => d ?? '?').join(', ')}]`;
  io.out(`${insp.file}  (${insp.bytes} bytes, sha256 ${insp.sha256})\n`);
  for (const i of insp.inputs) io.out(`  input   ${i.name}  ${i.type} ${dims(i.shape)}\n`);
  for (const o of insp.outputs) io.out(`  output  ${o.name}  ${o.type} ${dims(o.shape)}\n`);
  io.out(ref.manifest ? `  backbone.json: id ${ref.manifest.id}, features from "${ref.manifest.output.node}" (${ref.manifest.output.featureDim}-d)\n` : '  no backbone.json beside it (preprocessing from flags, the model shape and defaults)\n');
  return 0;
}
