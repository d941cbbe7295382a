/**
 * GPU through onnxruntime's execution providers (issue 11, item 4): NMLab's CNN (default
 * architecture, batch 128, 28×28 Fashion-MNIST from resources/demo) trains for one epoch on
 * the onnxruntime engine (src/core/pretrain/train-ort.ts: forward, backward and AdamW in one
 * graph per step) on CUDA and on CPU, from the same initialisation and batch order. Printed:
 * images/s of each, the largest per-step difference between their losses, and feature
 * extraction (the trained CNN exported to ONNX) on both: images/s and the largest feature
 * difference.
 *
 * Where CUDA is unavailable (no GPU, or the CUDA binaries not fetched: `npm run
 * fetch-optional`) the CPU half runs and the GPU half is reported as pending, with the reason.
 *
 *   npx tsx bench/gpu.bench.ts [--no-record]      (BENCH_IMAGES=N, default 6400)
 *
 * The GPU check on a CUDA machine (Linux x64, NVIDIA driver, CUDA 12 + cuDNN 9 libraries):
 *   npm run fetch-optional                       # fetches onnxruntime's CUDA provider
 *   node bin/nmlab.mjs doctor --json             # onnxruntime.providers: cuda available, GFLOP/s
 *   npx tsx bench/gpu.bench.ts                   # records CUDA vs CPU here in RESULTS.md
 *   npx vitest run test/unit/providers.test.ts test/unit/finetune.test.ts   # CUDA tests run instead of skipping
 *
 * Appends a section to bench/RESULTS.md unless --no-record.
 */
import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { execSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionProviderName } from '../src/shared/contract/environment';
import { initTfBackend } from '../src/core/tf/backend';
import { ensureGradients } from '../src/core/tf/gradients';
import { fashionMnistDir, fashionMnistTrain } from './data';
import { batchPixels } from '../src/core/pretrain/batches';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, pretrainCnn, type ImageSet } from '../src/core/pretrain/train';
import { CNN_FEATURE_NAME, CNN_INPUT_NAME, exportCnnToOnnx } from '../src/core/pretrain/onnx';
import { executionProvidersFor, loadOrt, ortThreads, probeProvider } from '../src/core/onnx/providers';

const HERE = dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BENCH_IMAGES ?? 6400);
const FEATURE_IMAGES = Number(process.env.BENCH_FEATURE_IMAGES ?? 2000);
const RECORD = !process.argv.includes('--no-record');
const BATCH = 128;

interface Trained {
  provider: ExecutionProviderName;
  imagesPerSecond: number;
  losses: number[];
  onnx: Uint8Array;
}

/** One epoch on the onnxruntime engine with every session on `provider` (NMLAB_EP). */
async function trainEpoch(provider: ExecutionProviderName, set: ImageSet): Promise<Trained> {
  process.env.NMLAB_EP = provider;
  const losses: number[] = [];
  // A short warm-up run first: session creation, graph optimisation, CUDA kernel selection.
  const warm = { ...set, count: BATCH * 2, pixels: set.pixels.subarray(0, BATCH * 2 * 784), labels: set.labels.subarray(0, BATCH * 2) };
  (await pretrainCnn({ train: warm, numClasses: 10, seed: 0, engine: 'ort', hyper: { epochs: 1, batchSize: BATCH } })).model.dispose();
  const t0 = performance.now();
  const res = await pretrainCnn({
    train: set,
    numClasses: 10,
    seed: 0,
    engine: 'ort',
    hyper: { epochs: 1, batchSize: BATCH },
    stepEvery: 1,
    onEvent: (e) => {
      if (e.kind === 'step') losses.push(e.loss);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const onnx = exportCnnToOnnx(res.model);
  res.model.dispose();
  return { provider, imagesPerSecond: (Math.floor(set.count / BATCH) * BATCH) / seconds, losses, onnx };
}

/** Features of `set` through the exported CNN on `provider`: images/s and the features. */
async function extract(provider: ExecutionProviderName, onnx: Uint8Array, set: ImageSet): Promise<{ imagesPerSecond: number; features: Float32Array }> {
  const ort = await loadOrt();
  const s = await ort.InferenceSession.create(onnx, { executionProviders: executionProvidersFor(provider), intraOpNumThreads: ortThreads(), interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  const parts: Float32Array[] = [];
  const all = Int32Array.from({ length: set.count }, (_, i) => i);
  const run = async (): Promise<void> => {
    parts.length = 0;
    for (let r = 0; r < set.count; r += 500) {
      const idx = all.subarray(r, Math.min(set.count, r + 500));
      const x = batchPixels(set, idx, [FASHION_MNIST_MEAN], [FASHION_MNIST_STD], undefined, 'nchw');
      const out = await s.run({ [CNN_INPUT_NAME]: new ort.Tensor('float32', x, [idx.length, 1, 28, 28]) }, [CNN_FEATURE_NAME]);
      parts.push(Float32Array.from(out[CNN_FEATURE_NAME].data as Float32Array));
    }
  };
  await run(); // warm-up
  const t0 = performance.now();
  await run();
  const seconds = (performance.now() - t0) / 1000;
  await s.release();
  const features = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    features.set(p, at);
    at += p.length;
  }
  return { imagesPerSecond: set.count / seconds, features };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

async function main(): Promise<void> {
  await initTfBackend();
  await ensureGradients();
  const set = await fashionMnistTrain(N);
  const { count } = set;
  const fcount = Math.min(FEATURE_IMAGES, count);
  const fset: ImageSet = { ...set, count: fcount, pixels: set.pixels.subarray(0, fcount * 784), labels: set.labels.subarray(0, fcount) };
  const uptime0 = execSync('uptime').toString().trim();
  const load0 = loadavg()[0];

  const cuda = await probeProvider('cuda');
  const lines = [`model: nmlab-cnn default, batch ${BATCH}, 28×28×1, one epoch of ${Math.floor(count / BATCH) * BATCH} images on the onnxruntime engine (AdamW in the graph), seed 0; ORT intra-op threads ${ortThreads()}`];
  const cpu = await trainEpoch('cpu', set);
  const cpuFx = await extract('cpu', cpu.onnx, fset);
  lines.push(`train  cpu : ${cpu.imagesPerSecond.toFixed(1).padStart(8)} img/s   first/last step loss ${cpu.losses[0].toFixed(4)} / ${cpu.losses[cpu.losses.length - 1].toFixed(4)}`);
  lines.push(`features cpu: ${cpuFx.imagesPerSecond.toFixed(1).padStart(8)} img/s   (${fcount} images, feature dim ${cpuFx.features.length / fcount})`);
  if (cuda.available) {
    const gpu = await trainEpoch('cuda', set);
    lines.push(`train  cuda: ${gpu.imagesPerSecond.toFixed(1).padStart(8)} img/s   first/last step loss ${gpu.losses[0].toFixed(4)} / ${gpu.losses[gpu.losses.length - 1].toFixed(4)}`);
    lines.push(`largest |loss_cuda − loss_cpu| over ${cpu.losses.length} steps: ${maxAbsDiff(gpu.losses, cpu.losses).toExponential(3)}`);
    // Both providers extract features from the same (CPU-trained) network.
    const gpuFx = await extract('cuda', cpu.onnx, fset);
    lines.push(`features cuda: ${gpuFx.imagesPerSecond.toFixed(1).padStart(7)} img/s   largest |feature_cuda − feature_cpu| ${maxAbsDiff(gpuFx.features, cpuFx.features).toExponential(3)}`);
    lines.push(`speed-up cuda/cpu: training ${(gpu.imagesPerSecond / cpu.imagesPerSecond).toFixed(2)}×, features ${(gpuFx.imagesPerSecond / cpuFx.imagesPerSecond).toFixed(2)}×`);
  } else {
    lines.push(`cuda: GPU run pending — the CUDA execution provider is unavailable here: ${cuda.detail}`);
  }
  lines.push(`load average (1 min) before/after: ${load0.toFixed(2)} / ${loadavg()[0].toFixed(2)} on ${cpus().length} cores`);
  lines.push(`uptime before: ${uptime0}`);
  lines.push(`uptime after:  ${execSync('uptime').toString().trim()}`);
  process.stdout.write(lines.join('\n') + '\n');
  if (RECORD) {
    const md = ['', `## gpu.bench.ts — ${new Date().toISOString()}`, '', `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; Node ${process.version}. Data: ${fashionMnistDir()}.`, '', '```', ...lines, '```', ''];
    appendFileSync(join(HERE, 'RESULTS.md'), md.join('\n'));
  }
}

void main();
