/**
 * Pre-training throughput of NMLab's CNN backbone (src/core/pretrain, default architecture,
 * batch 128, 28×28 Fashion-MNIST from resources/demo): images per second over one training
 * epoch on
 *   1. the wasm backend with NMLab's kernels (src/core/tf/kernels: the missing
 *      Conv2DBackpropFilter, the XNNPACK-backed Conv2DBackpropInput),
 *   2. the wasm backend with its stock (naive-loop) Conv2DBackpropInput, and
 *   3. the cpu backend (plain JS kernels): the baseline,
 * all in the same run. Each is warmed up on a short epoch first (XNNPACK operator creation,
 * JIT), then timed on BENCH_IMAGES images (default 1280) over BENCH_REPS repetitions, best
 * taken. Wall time and process CPU time are both reported: CPU time is steadier when the
 * shared machine is loaded (wasm here runs on one thread).
 *
 *   npx tsx bench/pretrain.bench.ts [--no-record]
 *
 * Appends a section to bench/RESULTS.md unless --no-record.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initTfBackend } from '../src/core/tf/backend';
import { ensureGradients } from '../src/core/tf/gradients';
import { registerWasmKernels, restoreStockWasmKernels } from '../src/core/tf/kernels';
import { readIdxPair } from '../src/core/datasets/idx';
import { pretrainCnn, type ImageSet } from '../src/core/pretrain/train';

const HERE = dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BENCH_IMAGES ?? 1280);
const REPS = Number(process.env.BENCH_REPS ?? 2);
/** The cpu backend is ~100× slower: time it on fewer images (its per-image rate is what counts). */
const N_CPU = Number(process.env.BENCH_CPU_IMAGES ?? 256);
const RECORD = !process.argv.includes('--no-record');

function dataDir(): string {
  const demo = join(HERE, '..', 'resources', 'demo', 'fashion-mnist');
  if (existsSync(join(demo, 'train-images-idx3-ubyte.gz'))) return demo;
  return '/usr/share/datasets/fashion-mnist';
}

interface Timing {
  label: string;
  wall: number;
  cpu: number;
}

function head(set: ImageSet, n: number): ImageSet {
  return { ...set, count: n, pixels: set.pixels.subarray(0, n * 784), labels: set.labels.subarray(0, n) };
}

async function timeEpoch(label: string, set: ImageSet, reps = REPS): Promise<Timing & { images: number }> {
  const warm = head(set, 128);
  (await pretrainCnn({ train: warm, numClasses: 10, seed: 0, hyper: { epochs: 1 } })).model.dispose();
  let best: Timing = { label, wall: Infinity, cpu: Infinity };
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const res = await pretrainCnn({ train: set, numClasses: 10, seed: 1, hyper: { epochs: 1 } });
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    res.model.dispose();
    const cpu = (c.user + c.system) / 1e6;
    if (wall < best.wall) best = { label, wall, cpu };
  }
  return { ...best, images: Math.floor(set.count / 128) * 128 };
}

async function main(): Promise<void> {
  process.env.NMLAB_TF_BACKEND = 'wasm';
  const choice = await initTfBackend();
  if (choice.chosen !== 'wasm') throw new Error(`wasm backend did not load: ${JSON.stringify(choice.probes)}`);
  await ensureGradients();
  const dir = dataDir();
  const { images, labels } = await readIdxPair(join(dir, 'train-images-idx3-ubyte.gz'), join(dir, 'train-labels-idx1-ubyte.gz'));
  const count = Math.min(N, images.count);
  const set: ImageSet = { pixels: images.pixels.subarray(0, count * 784), count, size: [1, 28, 28], labels: labels.subarray(0, count) };
  const uptime0 = execSync('uptime').toString().trim();
  const load0 = loadavg()[0];

  const results: Array<Timing & { images: number }> = [];
  registerWasmKernels();
  results.push(await timeEpoch('wasm + NMLab kernels', set));
  restoreStockWasmKernels();
  results.push(await timeEpoch('wasm, stock Conv2DBackpropInput', set));
  registerWasmKernels();
  await tf.setBackend('cpu');
  results.push(await timeEpoch('cpu backend (baseline)', head(set, Math.min(N_CPU, count)), 1));
  const uptime1 = execSync('uptime').toString().trim();

  const rate = (r: Timing & { images: number }) => ({ wall: r.images / r.wall, cpu: r.images / r.cpu });
  const base = rate(results[2]);
  const lines = [
    `model: nmlab-cnn default (stem 16 s2, stages 16/32/64 × 1 basic block, D = 64), batch 128, 28×28×1; one training epoch of ${results[0].images} images on wasm (best of ${REPS}), ${results[2].images} on cpu`,
    ...results.map((r) => {
      const q = rate(r);
      return `${r.label.padEnd(34)} ${q.wall.toFixed(1).padStart(7)} img/s wall  ${q.cpu.toFixed(1).padStart(7)} img/CPU-s   ratio vs cpu ${(q.wall / base.wall).toFixed(2)}× wall, ${(q.cpu / base.cpu).toFixed(2)}× CPU`;
    }),
    `load average (1 min) before/after: ${load0.toFixed(2)} / ${loadavg()[0].toFixed(2)} on ${cpus().length} cores`,
    `uptime before: ${uptime0}`,
    `uptime after:  ${uptime1}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (RECORD) {
    const md = [
      '',
      `## pretrain.bench.ts — ${new Date().toISOString()}`,
      '',
      `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; Node ${process.version}; tfjs 4.22 wasm (SIMD, 1 thread) vs tfjs cpu backend, same process. Data: ${dir}.`,
      '',
      '```',
      ...lines,
      '```',
      '',
    ];
    appendFileSync(join(HERE, 'RESULTS.md'), md.join('\n'));
  }
}

void main();
