/**
 * `nmlab doctor`: what this machine can run and how fast (DESIGN §3). Reports the platform,
 * versions, which TensorFlow.js backends load and which was chosen, onnxruntime-node's
 * execution providers (each candidate proved by a probe session, timed where it works, and
 * the one sessions use), and a measured matmul rate on the chosen tfjs backend.
 * Runs inside a job worker, never on a UI or server thread.
 */
import { cpus, platform, arch, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EnvironmentReport } from '../../shared/contract/environment';
import { NmlabError } from '../../shared/errors';
import { appRoot, appVersion } from '../paths';
import { initTfBackend, tf } from '../tf/backend';
import { Rng } from '../tuning/rng';
import type { ExecutionProviderName } from '../../shared/contract/environment';
import { chooseProviders, executionProvidersFor, forcedProvider, loadOrt, matmulChainModel, ortThreads, probeProvider, providerCandidates } from '../onnx/providers';
import { nchwcBlockSize } from '../onnx/autodiff/nchwc';

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

/**
 * Time a chain of MatMuls on one execution provider: Y = A·B·B·B·B with n×n float32 A and B,
 * B scaled by √(3/n) so entries keep their size along the chain. Inputs are copied in and
 * the output out on every run, as real sessions do. Two warm-up runs, then repetitions until
 * `targetSeconds` (at least 3). Row 0 of Y is checked against the same chain in float64 JS.
 */
export async function measureProviderMatmul(name: ExecutionProviderName, n: number, targetSeconds = 0.5, signal?: AbortSignal): Promise<{ gflops: number; maxAbsError: number }> {
  const ort = await loadOrt();
  const links = 4;
  const rng = new Rng(17);
  const a = Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1));
  const scale = Math.sqrt(3 / n);
  const b = Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1) * scale);
  const session = await ort.InferenceSession.create(matmulChainModel(links), { executionProviders: executionProvidersFor(name), intraOpNumThreads: ortThreads(), interOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const feeds = { A: new ort.Tensor('float32', a, [n, n]), B: new ort.Tensor('float32', b, [n, n]) };
    let y: Float32Array = new Float32Array(0);
    for (let i = 0; i < 2; i++) y = (await session.run(feeds)).Y.data as Float32Array;
    let reps = 0;
    let seconds = 0;
    while ((reps < 3 || seconds < targetSeconds) && reps < 1000) {
      checkCancelled(signal, `${name} matmul repetition ${reps + 1}`);
      const t0 = performance.now();
      y = (await session.run(feeds)).Y.data as Float32Array;
      seconds += (performance.now() - t0) / 1000;
      reps++;
    }
    let row = Float64Array.from(a.subarray(0, n));
    for (let l = 0; l < links; l++) {
      const next = new Float64Array(n);
      for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) next[j] += row[k] * b[k * n + j];
      row = next;
    }
    let maxAbsError = 0;
    for (let j = 0; j < n; j++) maxAbsError = Math.max(maxAbsError, Math.abs(row[j] - y[j]));
    return { gflops: (reps * links * 2 * n ** 3) / seconds / 1e9, maxAbsError };
  } finally {
    await session.release();
  }
}

/**
 * onnxruntime-node: the providers its build lists, NMLab's candidates for this platform each
 * probed (../onnx/providers.ts) and timed where available, and the provider sessions use.
 */
export async function probeOnnxruntime(matmulSize: number, targetSeconds?: number, signal?: AbortSignal): Promise<EnvironmentReport['onnxruntime']> {
  let ort: Awaited<ReturnType<typeof loadOrt>>;
  try {
    ort = await loadOrt();
  } catch (err) {
    return { loaded: false, detail: `onnxruntime-node did not load: ${firstLine(err)}`, executionProviders: [], providers: [], chosen: 'cpu', forced: false };
  }
  const executionProviders = ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
  let forced: ExecutionProviderName | null = null;
  let forcedError = '';
  try {
    forced = forcedProvider();
  } catch (err) {
    // A mistyped NMLAB_EP: the doctor reports it (sessions refuse to start until it is fixed).
    forcedError = `; ${firstLine(err)}`;
  }
  const names = providerCandidates();
  if (forced && !names.includes(forced)) names.unshift(forced);
  const providers: EnvironmentReport['onnxruntime']['providers'] = [];
  for (const name of names) {
    const probe = await probeProvider(name);
    let gflops: number | null = null;
    let detail = probe.detail;
    if (probe.available) {
      const m = await measureProviderMatmul(name, matmulSize, targetSeconds, signal);
      // float32 sums of n terms of size ~1 along a 4-link chain; a wrong kernel is off by O(1).
      if (!(m.maxAbsError < 1e-2)) return { loaded: false, detail: `the ${name} provider computed a MatMul chain with error ${m.maxAbsError}`, executionProviders, providers, chosen: 'cpu', forced: false };
      gflops = m.gflops;
      detail = `${detail}; ${matmulSize}×${matmulSize} MatMul chain at ${m.gflops.toFixed(2)} GFLOP/s`;
    }
    providers.push({ name, available: probe.available, detail, gflops });
  }
  const cpu = providers.find((p) => p.name === 'cpu');
  if (!cpu?.available) return { loaded: false, detail: `onnxruntime-node loaded but a CPU session failed: ${cpu?.detail ?? 'not probed'}`, executionProviders, providers, chosen: 'cpu', forced: false };
  let chosen: ExecutionProviderName = 'cpu';
  // Whether CPU training graphs get the NCHWc convolutions (../onnx/autodiff/nchwc.ts).
  const block = await nchwcBlockSize(ort);
  const nchwc = block ? `training convolutions on the NCHWc kernels (block ${block})` : 'no NCHWc kernels: training convolutions run as built (slower)';
  let detail = `CPU session created and a MatMul checked; ${nchwc}${forcedError}`;
  if (!forcedError) {
    try {
      chosen = (await chooseProviders()).name;
    } catch (err) {
      // A forced provider that is unavailable: report it rather than fail the whole doctor.
      detail = `${detail}; ${firstLine(err)}`;
    }
  }
  return { loaded: true, detail, executionProviders, providers, chosen, forced: forced !== null && forced === chosen };
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

  progress(1, STAGES, 'probing onnxruntime-node execution providers');
  const onnxruntime = await probeOnnxruntime(options.matmulSize, options.targetSeconds, options.signal);
  for (const p of onnxruntime.providers) log('info', `onnxruntime ${p.name}: ${p.detail}`);
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
