/**
 * Fast transposed matMul on the wasm backend (NOTES §2).
 *
 * tfjs-backend-wasm 4.22 hands `BatchMatMul` / `_FusedMatMul` to XNNPACK only when neither
 * operand is transposed; with `transposeA` or `transposeB` it falls back to a naive loop that
 * is 10–30× slower. Every matMul gradient uses a transposed product (dA = dy·Bᵀ, dB = Aᵀ·dy),
 * so dense training spends almost all its time there. The override below transposes the
 * flagged operand physically with the wasm `Transpose` kernel (O(n) and cache-friendly), then
 * calls the original kernel with both flags off. The fix is engine-wide: it replaces the
 * registered kernels, so every `tf.matMul`, `tf.fused.matMul` and their gradients use it.
 *
 * It also routes batched `_FusedMatMul` calls that carry a bias around an upstream bug (the
 * bias is added by flat index when the batch is larger than one).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

const PATCHED = ['BatchMatMul', '_FusedMatMul'] as const;
type PatchedKernel = (typeof PATCHED)[number];

/** The kernels as the wasm package registered them, kept so the fix can be undone (bench). */
const originals = new Map<PatchedKernel, KernelConfig>();

interface KernelBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

function isKernelBackend(b: unknown): b is KernelBackend {
  return typeof b === 'object' && b !== null && typeof (b as KernelBackend).disposeData === 'function';
}

/** Swap the last two axes of `x` with the backend's own Transpose kernel. */
function transposeLast2(transposeKernel: KernelFunc, x: TensorInfo, backend: unknown): TensorInfo {
  const rank = x.shape.length;
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  const out = transposeKernel({ inputs: { x }, backend: backend as never, attrs: { perm } });
  return Array.isArray(out) ? out[0] : out;
}

function run1(name: string, args: Parameters<KernelFunc>[0]): TensorInfo {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered`);
  const out = k.kernelFunc(args);
  return Array.isArray(out) ? out[0] : out;
}

/**
 * wasm's `_FusedMatMul` adds the bias by flat index when there is more than one batch, which
 * gives wrong numbers (checked against the cpu backend in test/unit/matmul.test.ts). For
 * batched inputs with a bias or PReLU weights, compose BatchMatMul, Add and the activation
 * from the backend's own kernels instead.
 */
function composedFusedMatMul(args: Parameters<KernelFunc>[0]): TensorInfo {
  const inputs = args.inputs as Record<string, TensorInfo | undefined>;
  const attrs = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string; leakyreluAlpha?: number };
  const { backend } = args;
  const temps: TensorInfo[] = [];
  let y = run1('BatchMatMul', { inputs: { a: inputs.a!, b: inputs.b! }, backend, attrs: { transposeA: attrs.transposeA, transposeB: attrs.transposeB } });
  if (inputs.bias) {
    temps.push(y);
    y = run1('Add', { inputs: { a: y, b: inputs.bias }, backend, attrs: {} });
  }
  const act = attrs.activation ?? 'linear';
  if (act !== 'linear') {
    temps.push(y);
    const names: Record<string, string> = { relu: 'Relu', relu6: 'Relu6', elu: 'Elu', sigmoid: 'Sigmoid', leakyrelu: 'LeakyRelu', prelu: 'Prelu' };
    const name = names[act];
    if (!name) throw new Error(`fused matMul activation ${act} is not supported`);
    y =
      act === 'prelu'
        ? run1(name, { inputs: { x: y, alpha: inputs.preluActivationWeights! }, backend, attrs: {} })
        : run1(name, { inputs: { x: y }, backend, attrs: act === 'leakyrelu' ? { alpha: attrs.leakyreluAlpha ?? 0.2 } : {} });
  }
  if (isKernelBackend(backend)) for (const t of temps) backend.disposeData(t.dataId);
  return y;
}

function outerSize(shape: number[]): number {
  return shape.slice(0, -2).reduce((p, d) => p * d, 1);
}

function wrap(original: KernelConfig, transposeKernel: KernelFunc): KernelFunc {
  const inner = original.kernelFunc;
  const fused = original.kernelName === '_FusedMatMul';
  return (args) => {
    if (fused) {
      const inp = args.inputs as Record<string, TensorInfo | undefined>;
      const batched = outerSize(inp.a!.shape) > 1 || outerSize(inp.b!.shape) > 1;
      if (batched && (inp.bias || inp.preluActivationWeights)) return composedFusedMatMul(args);
    }
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean } | undefined;
    const transposeA = attrs?.transposeA === true;
    const transposeB = attrs?.transposeB === true;
    if (!transposeA && !transposeB) return inner(args);
    const { backend } = args;
    const inputs = args.inputs as Record<string, TensorInfo>;
    const temps: TensorInfo[] = [];
    const a = transposeA ? transposeLast2(transposeKernel, inputs.a, backend) : inputs.a;
    if (transposeA) temps.push(a);
    const b = transposeB ? transposeLast2(transposeKernel, inputs.b, backend) : inputs.b;
    if (transposeB) temps.push(b);
    try {
      return inner({ ...args, inputs: { ...inputs, a, b }, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    } finally {
      // Temporaries made inside a kernel are not tracked by the engine: free them here.
      if (isKernelBackend(backend)) for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

/**
 * Install the transpose-first matMul kernels on the wasm backend. Idempotent; a no-op when
 * the wasm backend's kernels are not registered (wasm package not loaded).
 * @returns whether the fix is active after the call.
 */
export function installWasmMatMulFix(): boolean {
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!transpose) return false;
  for (const name of PATCHED) {
    if (originals.has(name)) continue;
    const original = tf.getKernel(name, 'wasm');
    if (!original) continue;
    originals.set(name, original);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...original, kernelFunc: wrap(original, transpose.kernelFunc) });
  }
  return originals.size > 0;
}

/** Put the wasm package's own matMul kernels back (used by the benchmark's "before" leg). */
export function uninstallWasmMatMulFix(): void {
  for (const [name, original] of originals) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(original);
  }
  originals.clear();
}

/** Whether the override is currently registered. */
export function wasmMatMulFixActive(): boolean {
  return originals.size > 0;
}
