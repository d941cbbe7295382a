/**
 * Two pre-training jobs at once, as a study's queue runs them: each job in its own process with
 * every core's worth of onnxruntime threads (what NMLab did before the runner shared the cores)
 * against ⌊cores / 2⌋ threads each (what the runner now passes, src/core/jobs/runner.ts
 * `threadsPerJob`). Prints the wall time of both jobs together for each, alternating
 * BENCH_REPS times, and the ratio. NMLab's default CNN, batch 128, 2 epochs of BENCH_IMAGES
 * Fashion-MNIST images per job on the onnxruntime engine.
 *
 *   npx tsx bench/jobs-share.bench.ts            (one job: npx tsx bench/jobs-share.bench.ts --job)
 */
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pretrainCnn } from '../src/core/pretrain/train';
import { initTfBackend } from '../src/core/tf/backend';
import { fashionMnistTrain } from './data';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 3840);
const REPS = Number(process.env.BENCH_REPS ?? 2);

async function job(): Promise<void> {
  process.env.NMLAB_TF_BACKEND = 'wasm';
  await initTfBackend();
  const set = await fashionMnistTrain(IMAGES);
  const r = await pretrainCnn({ train: set, numClasses: 10, seed: 1, engine: 'ort', hyper: { epochs: 2 } });
  process.stdout.write(`${JSON.stringify({ imagesPerSecond: r.history.map((h) => Math.round(h.imagesPerSecond)), engine: r.engine })}\n`);
}

/** Both jobs at once with `threads` onnxruntime threads each; seconds until both ended. */
async function pair(threads: number): Promise<{ seconds: number; rates: number[][] }> {
  const self = fileURLToPath(import.meta.url);
  const t0 = performance.now();
  const runs = [0, 1].map(
    () =>
      new Promise<number[]>((resolve, reject) => {
        const child = spawn(process.execPath, [...process.execArgv, self, '--job'], { env: { ...process.env, NMLAB_ORT_THREADS: String(threads) }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => (code === 0 ? resolve((JSON.parse(out.trim().split('\n').pop() ?? '{}') as { imagesPerSecond: number[] }).imagesPerSecond) : reject(new Error(`job exited with ${code}`))));
      }),
  );
  const rates = await Promise.all(runs);
  return { seconds: (performance.now() - t0) / 1000, rates };
}

async function main(): Promise<void> {
  const cores = availableParallelism();
  const shared = Math.max(1, Math.floor(cores / 2));
  console.log(`two pre-training jobs at once on ${cores} cores, ${IMAGES} images × 2 epochs each; load before ${loadavg()[0].toFixed(2)}`);
  const best = { all: Infinity, share: Infinity };
  for (let r = 0; r < REPS; r++) {
    for (const [key, threads] of [['all', cores], ['share', shared]] as const) {
      const p = await pair(threads);
      best[key] = Math.min(best[key], p.seconds);
      console.log(`${threads} thread(s) per job: ${p.seconds.toFixed(1)} s for both (img/s per epoch: ${p.rates.map((x) => x.join('/')).join(', ')})`);
    }
  }
  console.log(`best: ${best.all.toFixed(1)} s with ${cores} threads per job, ${best.share.toFixed(1)} s with ${shared}: the shared cores finish in ${(best.share / best.all).toFixed(2)}× the time; load after ${loadavg()[0].toFixed(2)}`);
}

await (process.argv.includes('--job') ? job() : main());
