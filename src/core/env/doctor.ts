/**
 * `nmlab doctor`: what this machine can run and how fast (DESIGN §3). Reports the platform,
 * versions, which TensorFlow.js backends load and which was chosen, onnxruntime-node's
 * execution providers (proved by running a tiny session on CPU), and a measured matmul rate.
 * Runs inside a job worker, never on a UI or server thread.
 */
import { cpus, platform, arch, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EnvironmentReport } from '../../shared/contract/environment';
import { NmlabError } from '../../shared/errors';
import { appRoot, appVersion } from '../paths';
import { initTfBackend, tf } from '../tf/backend';
import { tinyMatMulModel } from './tinyOnnx';

export interface DoctorOptions {
  /** Side of the square matrices multiplied for the GFLOP/s figure. */
  matmulSize: number;
  /** Stop timing once this much time has been spent on timed repetitions (default 0.5 s). */
  targetSeconds?: number;
  signal?: AbortSignal;
  progress?: (done: number, total: number, message?: string) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const STAGES = 4;

function checkCancelled(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) throw new NmlabError('CANCELLED', `doctor cancelled during ${where}`);
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/** onnxruntime-node's version from its own package.json (null when not installed). */
function onnxruntimeVersion(): string | null {
  try {
    const req = createRequire(join(appRoot(), 'package.json'));
    const pkg = req('onnxruntime-node/package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

/** List the execution providers and run Y = A·B on CPU, checked against the known product. */
export async function probeOnnxruntime(): Promise<EnvironmentReport['onnxruntime']> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    return { loaded: false, detail: `onnxruntime-node did not load: ${firstLine(err)}`, executionProviders: [] };
  }
  const executionProviders = ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
  try {
    const session = await ort.InferenceSession.create(tinyMatMulModel(), { executionProviders: ['cpu'] });
    const a = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const b = new ort.Tensor('float32', Float32Array.from([7, 8, 9, 10, 11, 12]), [3, 2]);
    const out = await session.run({ A: a, B: b });
    const y = Array.from(out.Y.data as Float32Array);
    await session.release();
    // [1 2 3; 4 5 6]·[7 8; 9 10; 11 12] = [58 64; 139 154]
    const expected = [58, 64, 139, 154];
    if (y.some((v, i) => v !== expected[i])) {
      return { loaded: false, detail: `a CPU session ran but computed ${JSON.stringify(y)} instead of ${JSON.stringify(expected)}`, executionProviders };
    }
    return { loaded: true, detail: 'CPU session created and a 2×3·3×2 MatMul checked', executionProviders };
  } catch (err) {
    return { loaded: false, detail: `onnxruntime-node loaded but a CPU session failed: ${firstLine(err)}`, executionProviders };
  }
}

/**
 * Time `C = A·B` for n×n float32 matrices on the current tfjs backend: two warm-up runs
 * (kernel compilation, allocator growth), then repetitions until `targetSeconds` has passed
 * (at least 3). Each repetition reads the result back, so asynchronous backends are timed to
 * completion. A few output entries are checked against float64 dot products in JS.
 */
export async function measureMatmul(n: number, targetSeconds = 0.5, signal?: AbortSignal): Promise<EnvironmentReport['matmul']> {
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 7);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 11);
  try {
    for (let i = 0; i < 2; i++) {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    }
    let reps = 0;
    let seconds = 0;
    let last: Float32Array | null = null;
    while ((reps < 3 || seconds < targetSeconds) && reps < 1000) {
      checkCancelled(signal, `matmul repetition ${reps + 1}`);
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      const data = (await c.data()) as Float32Array;
      seconds += (performance.now() - t0) / 1000;
      c.dispose();
      last = data;
      reps++;
    }
    const av = (await a.data()) as Float32Array;
    const bv = (await b.data()) as Float32Array;
    let maxAbsError = 0;
    // Check the first row, the diagonal's far end and a middle entry.
    const checks: Array<[number, number]> = [[0, 0], [0, n - 1], [n - 1, n - 1], [n >> 1, n >> 2]];
    for (const [i, j] of checks) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += av[i * n + k] * bv[k * n + j];
      maxAbsError = Math.max(maxAbsError, Math.abs(dot - last![i * n + j]));
    }
    const gflops = (reps * 2 * n ** 3) / seconds / 1e9;
    return { backend: tf.getBackend(), size: n, seconds, gflops, repetitions: reps, maxAbsError };
  } finally {
    a.dispose();
    b.dispose();
  }
}

/** Build the whole EnvironmentReport. */
export async function runDoctor(options: DoctorOptions): Promise<EnvironmentReport> {
  const progress = options.progress ?? (() => undefined);
  const log = options.log ?? (() => undefined);
  const cpuList = cpus();

  progress(0, STAGES, 'loading TensorFlow.js backends');
  const choice = await initTfBackend({ probeAll: true });
  log('info', `tfjs backend chosen: ${choice.chosen}${choice.forced ? ' (forced by NMLAB_TF_BACKEND)' : ''}`);
  checkCancelled(options.signal, 'backend probing');

  progress(1, STAGES, 'probing onnxruntime-node');
  const onnxruntime = await probeOnnxruntime();
  checkCancelled(options.signal, 'onnxruntime probing');

  progress(2, STAGES, `timing a ${options.matmulSize}×${options.matmulSize} matmul on ${choice.chosen}`);
  const matmul = await measureMatmul(options.matmulSize, options.targetSeconds, options.signal);
  if (!(matmul.gflops > 0) || !Number.isFinite(matmul.gflops)) {
    throw new NmlabError('NUMERIC', `the matmul benchmark gave ${matmul.gflops} GFLOP/s on ${matmul.backend}; the timer or backend is broken`);
  }
  log('info', `matmul ${matmul.size}: ${matmul.gflops.toFixed(2)} GFLOP/s over ${matmul.repetitions} repetitions`);

  progress(3, STAGES, 'writing report');
  const report: EnvironmentReport = {
    platform: platform(),
    arch: arch(),
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    totalMemoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    versions: {
      node: process.versions.node,
      electron: process.versions.electron ?? null,
      chrome: process.versions.chrome ?? null,
      nmlab: appVersion(),
      tfjs: tf.version_core,
      onnxruntime: onnxruntimeVersion(),
    },
    tfjs: {
      backends: choice.probes.map((p) => ({ name: p.name, loaded: p.loaded, detail: p.detail })),
      chosen: choice.chosen,
      forced: choice.forced,
    },
    onnxruntime,
    matmul,
    measuredAt: new Date().toISOString(),
  };
  progress(STAGES, STAGES, 'done');
  return report;
}
