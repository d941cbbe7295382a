/**
 * TensorFlow.js backend selection (DESIGN §3): the fastest backend that loads, in the order
 * tfjs-node-gpu, tfjs-node, wasm, cpu. `NMLAB_TF_BACKEND` forces one. Native backends are
 * optional installs, so each is probed with a dynamic import that may fail.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NmlabError } from '../../shared/errors';
import { installWasmMatMulFix } from './wasmMatMul';
import { ensureGradients } from './gradients';
import { registerWasmKernels } from './kernels';

export type TfBackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendProbeResult {
  name: TfBackendName;
  loaded: boolean;
  detail: string;
}

export interface BackendChoice {
  chosen: TfBackendName;
  forced: TfBackendName | null;
  probes: BackendProbeResult[];
}

/** Preference order; the first that registers and initialises wins. */
export const BACKEND_ORDER: readonly TfBackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

const loaders: Record<TfBackendName, () => Promise<string>> = {
  // tfjs-node(-gpu) register the backend named 'tensorflow' on import.
  'tensorflow-gpu': async () => {
    await import(/* @vite-ignore */ '@tensorflow/tfjs-node-gpu' as string);
    return 'tensorflow';
  },
  tensorflow: async () => {
    await import(/* @vite-ignore */ '@tensorflow/tfjs-node' as string);
    return 'tensorflow';
  },
  wasm: async () => {
    await import('@tensorflow/tfjs-backend-wasm');
    return 'wasm';
  },
  cpu: async () => {
    await import('@tensorflow/tfjs-backend-cpu');
    return 'cpu';
  },
};

let choice: Promise<BackendChoice> | null = null;
const afterInitHooks: Array<(backend: string) => void> = [];

/** Register a function run once the backend is chosen (e.g. kernel overrides for wasm). */
export function onBackendReady(hook: (backend: string) => void): void {
  afterInitHooks.push(hook);
}

// wasm's transposed matMul is 10–30× slower than transposing first (see wasmMatMul.ts);
// every matMul gradient hits it, so the fix is installed for the whole engine.
onBackendReady((backend) => {
  if (backend === 'wasm') installWasmMatMulFix();
});

// wasm lacks the conv gradients (Conv2DBackpropFilter, depthwise) and has a slow
// Conv2DBackpropInput; NMLab's kernels fill both (see kernels/index.ts).
onBackendReady((backend) => {
  if (backend === 'wasm') registerWasmKernels();
});

function parseForced(): TfBackendName | null {
  const raw = process.env.NMLAB_TF_BACKEND?.trim();
  if (!raw) return null;
  const alias: Record<string, TfBackendName> = { 'node-gpu': 'tensorflow-gpu', gpu: 'tensorflow-gpu', node: 'tensorflow', tensorflow: 'tensorflow', 'tensorflow-gpu': 'tensorflow-gpu', wasm: 'wasm', cpu: 'cpu' };
  const name = alias[raw];
  if (!name) throw new NmlabError('BAD_REQUEST', `NMLAB_TF_BACKEND="${raw}" is not a backend; use one of tensorflow-gpu, tensorflow, wasm, cpu`);
  return name;
}

async function tryBackend(name: TfBackendName): Promise<BackendProbeResult> {
  try {
    const registered = await loaders[name]();
    const ok = await tf.setBackend(registered);
    if (!ok) return { name, loaded: false, detail: 'registered but failed to initialise' };
    await tf.ready();
    if (name === 'wasm') return { name, loaded: true, detail: `SIMD ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'on' : 'off'}, ${tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? 'multi-thread' : '1 thread'}` };
    return { name, loaded: true, detail: 'loaded' };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const missing = /Cannot find (module|package)/.test(message);
    return { name, loaded: false, detail: missing ? 'not installed (optional; run `npm run fetch-optional`)' : message };
  }
}

/**
 * Choose and initialise the backend once per process. Probes every backend in order until
 * one loads; with `probeAll`, also reports on the ones after it (for `nmlab doctor`).
 */
export function initTfBackend(options: { probeAll?: boolean } = {}): Promise<BackendChoice> {
  choice ??= (async () => {
    const forced = parseForced();
    const probes: BackendProbeResult[] = [];
    let chosen: TfBackendName | null = null;
    const order = forced ? [forced] : BACKEND_ORDER;
    for (const name of order) {
      const probe = await tryBackend(name);
      probes.push(probe);
      if (probe.loaded) {
        chosen = name;
        break;
      }
    }
    if (!chosen) {
      const why = probes.map((p) => `${p.name}: ${p.detail}`).join('; ');
      throw new NmlabError('BACKEND_UNAVAILABLE', `no TensorFlow.js backend could be loaded (${why})`);
    }
    if (options.probeAll) {
      // Report the remaining backends without switching to them.
      for (const name of BACKEND_ORDER) {
        if (probes.some((p) => p.name === name)) continue;
        probes.push(await probeOnly(name));
      }
      await tf.setBackend(chosenRegistered(chosen));
    }
    // Training needs the gradient registry, which tfjs-core's Node bundle leaves empty.
    await ensureGradients();
    for (const hook of afterInitHooks) hook(tf.getBackend());
    return { chosen, forced, probes };
  })();
  return choice;
}

function chosenRegistered(name: TfBackendName): string {
  return name === 'tensorflow-gpu' ? 'tensorflow' : name;
}

async function probeOnly(name: TfBackendName): Promise<BackendProbeResult> {
  try {
    await loaders[name]();
    return { name, loaded: true, detail: 'available (not chosen)' };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const missing = /Cannot find (module|package)/.test(message);
    return { name, loaded: false, detail: missing ? 'not installed (optional; run `npm run fetch-optional`)' : message };
  }
}

export { tf };
