/**
 * One execution-provider choice for every onnxruntime session NMLab opens, inference and
 * training alike (DESIGN §3): CUDA where its optional binaries are installed, DirectML on
 * Windows, CoreML on macOS, WebGPU where an adapter exists, CPU otherwise. `NMLAB_EP` forces
 * one. Each candidate is proved by a probe session (create, run a MatMul, check the product)
 * inside try/catch, because a listed provider may still fail to load (NOTES.md §1); failures
 * fall through to the next candidate and CPU always remains.
 *
 * Sessions on a GPU provider also list `cpu`, so ORT places operators the provider lacks
 * (e.g. float64 Gemm on WebGPU) on the CPU instead of failing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { ExecutionProviderName, type ProviderProbe } from '../../shared/contract/environment';
import { NmlabError } from '../../shared/errors';
import { appRoot } from '../paths';
import { encodeModel, valueInfo } from './builder';

type Ort = typeof import('onnxruntime-node');
type SessionOptions = import('onnxruntime-node').InferenceSession.SessionOptions;

let ortPromise: Promise<Ort> | undefined;

/** Loads onnxruntime-node once; rejects with the loader's error where it is unavailable. */
export function loadOrt(): Promise<Ort> {
  ortPromise ??= import('onnxruntime-node').then((m) => ((m as { default?: Ort }).default ?? m) as Ort);
  return ortPromise;
}

/** Threads ORT may use: NMLAB_ORT_THREADS, else every core. */
export function ortThreads(): number {
  const env = Number(process.env.NMLAB_ORT_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/** The folder holding onnxruntime-node's native binaries (null where the package is missing). */
function ortBinaryRoot(): string | null {
  try {
    const req = createRequire(join(appRoot(), 'package.json'));
    return join(dirname(req.resolve('onnxruntime-node/package.json')), 'bin');
  } catch {
    return null;
  }
}

/**
 * The CUDA provider library (`libonnxruntime_providers_cuda.so`) is not in the npm package;
 * onnxruntime-node's install script (run by `npm run fetch-optional`) fetches it.
 */
export function cudaBinariesPresent(root = ortBinaryRoot()): boolean {
  if (!root || !existsSync(root)) return false;
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) stack.push(join(dir, e.name));
      else if (/onnxruntime_providers_cuda\.(so|dll)/.test(e.name)) return true;
    }
  }
  return false;
}

/**
 * On Linux the WebGPU provider (Dawn) finds adapters through Vulkan only; without the Vulkan
 * loader the probe can only fail, after Dawn prints a warning on stderr, so it is not tried.
 */
function vulkanLoaderPresent(): boolean {
  const r = spawnSync('ldconfig', ['-p'], { encoding: 'utf8', timeout: 5000 });
  if (r.status === 0) return /libvulkan\.so\.1\b/.test(r.stdout);
  return ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/lib/aarch64-linux-gnu'].some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/** NMLab's candidates for a platform, best first; CPU is always last. */
export function providerCandidates(platform: NodeJS.Platform = process.platform): ExecutionProviderName[] {
  if (platform === 'linux') return ['cuda', 'webgpu', 'cpu'];
  if (platform === 'win32') return ['dml', 'webgpu', 'cpu'];
  if (platform === 'darwin') return ['coreml', 'webgpu', 'cpu'];
  return ['cpu'];
}

/**
 * A chain of `links` MatMuls, Y = A·B·B·…·B with A: m×n and B: n×n, for probing a provider
 * and timing it. Several links per run keep the provider busy relative to the copies in and out.
 */
export function matmulChainModel(links: number): Uint8Array {
  const nodes = Array.from({ length: links }, (_, i) => ({ opType: 'MatMul', inputs: [i === 0 ? 'A' : `y${i - 1}`, 'B'], outputs: [i === links - 1 ? 'Y' : `y${i}`] }));
  return encodeModel({
    opsetVersion: 13,
    graph: { name: `nmlab_matmul_chain_${links}`, inputs: [valueInfo('A', 'float32', ['m', 'n']), valueInfo('B', 'float32', ['n', 'n'])], outputs: [valueInfo('Y', 'float32', ['m', 'n'])], nodes },
  });
}

/** What ORT is asked for when a session runs on `name`: the provider, then CPU for the rest. */
export function executionProvidersFor(name: ExecutionProviderName): string[] {
  return name === 'cpu' ? ['cpu'] : [name, 'cpu'];
}

const probes = new Map<ExecutionProviderName, Promise<ProviderProbe>>();

/** Reasons a provider cannot even be tried here, or null when a probe session should decide. */
function precondition(ort: Ort, name: ExecutionProviderName): string | null {
  if (name === 'cpu') return null;
  if (!providerCandidates().includes(name)) return `not offered by onnxruntime-node on ${process.platform}-${process.arch}`;
  const listed = ort.listSupportedBackends().some((b) => b.name === name);
  if (!listed) return `this onnxruntime-node build (${process.platform}-${process.arch}) has no ${name} provider`;
  if (name === 'cuda') {
    if (process.platform !== 'linux' || process.arch !== 'x64') return 'CUDA is offered for linux-x64 only';
    if (!cudaBinariesPresent()) return 'the CUDA provider binaries are not installed; run `npm run fetch-optional` on a machine with an NVIDIA GPU';
  }
  if (name === 'webgpu' && process.platform === 'linux' && !vulkanLoaderPresent()) return 'no Vulkan loader (libvulkan.so.1), which WebGPU needs on Linux';
  return null;
}

/**
 * Tries one provider: a session running only on it (no CPU fallback, so a silent fallback
 * cannot pass), one MatMul checked against the known product. Cached per process.
 */
export function probeProvider(name: ExecutionProviderName): Promise<ProviderProbe> {
  let p = probes.get(name);
  if (!p) {
    p = (async (): Promise<ProviderProbe> => {
      let ort: Ort;
      try {
        ort = await loadOrt();
      } catch (err) {
        return { name, available: false, detail: `onnxruntime-node did not load: ${firstLine(err)}` };
      }
      const why = precondition(ort, name);
      if (why) return { name, available: false, detail: why };
      try {
        const session = await ort.InferenceSession.create(matmulChainModel(1), { executionProviders: [name], logSeverityLevel: 3 });
        try {
          const a = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [2, 2]);
          const b = new ort.Tensor('float32', Float32Array.from([5, 6, 7, 8]), [2, 2]);
          const y = Array.from((await session.run({ A: a, B: b })).Y.data as Float32Array);
          // [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50]
          if (y.join() !== '19,22,43,50') return { name, available: false, detail: `a ${name} session computed [${y.join(', ')}] instead of [19, 22, 43, 50]` };
        } finally {
          await session.release();
        }
        return { name, available: true, detail: `a ${name} session ran a MatMul and gave the right product` };
      } catch (err) {
        return { name, available: false, detail: `a ${name} session failed: ${firstLine(err)}` };
      }
    })();
    probes.set(name, p);
  }
  return p;
}

/** The provider choice, with every candidate's probe (those tried before the chosen one). */
export interface ProviderChoice {
  name: ExecutionProviderName;
  /** True where NMLAB_EP named it. */
  forced: boolean;
  /** Pass as `executionProviders` to `InferenceSession.create`. */
  executionProviders: string[];
  probes: ProviderProbe[];
}

/** NMLAB_EP, checked; null when unset or empty. */
export function forcedProvider(env = process.env.NMLAB_EP): ExecutionProviderName | null {
  if (env === undefined || env.trim() === '') return null;
  const parsed = ExecutionProviderName.safeParse(env.trim().toLowerCase());
  if (!parsed.success) throw new NmlabError('BAD_REQUEST', `NMLAB_EP=${env} is not an execution provider; use one of ${ExecutionProviderName.options.join(', ')}, or unset it to choose automatically`);
  return parsed.data;
}

let choice: { key: string; promise: Promise<ProviderChoice> } | undefined;

/**
 * The provider every ORT session uses: NMLAB_EP when set (an unavailable forced provider is
 * an error, never a silent CPU run), else the first candidate whose probe passes. Cached per
 * process and NMLAB_EP value.
 */
export function chooseProviders(): Promise<ProviderChoice> {
  const key = process.env.NMLAB_EP ?? '';
  if (choice?.key !== key) {
    const promise = (async (): Promise<ProviderChoice> => {
      const forced = forcedProvider(key);
      if (forced) {
        const probe = await probeProvider(forced);
        if (!probe.available) throw new NmlabError('BACKEND_UNAVAILABLE', `NMLAB_EP=${forced}, but the ${forced} execution provider is unavailable: ${probe.detail}. Unset NMLAB_EP to choose automatically, or set NMLAB_EP=cpu`);
        return { name: forced, forced: true, executionProviders: executionProvidersFor(forced), probes: [probe] };
      }
      const tried: ProviderProbe[] = [];
      for (const name of providerCandidates()) {
        const probe = await probeProvider(name);
        tried.push(probe);
        if (probe.available) return { name, forced: false, executionProviders: executionProvidersFor(name), probes: tried };
      }
      // CPU's probe failed too: ORT itself is broken; let the session creation report it.
      return { name: 'cpu', forced: false, executionProviders: ['cpu'], probes: tried };
    })();
    choice = { key, promise };
    promise.catch(() => {
      if (choice?.promise === promise) choice = undefined;
    });
  }
  return choice.promise;
}

/** `base` with the chosen providers filled in: what every `InferenceSession.create` passes. */
export async function sessionOptions(base: SessionOptions = {}): Promise<SessionOptions> {
  const c = await chooseProviders();
  return { ...base, executionProviders: c.executionProviders };
}
