/**
 * WebAssembly SIMD kernels for NMLab's hot element loops (see kernels.ll): the fused
 * Householder pass of the eigensolver's reduction, the reflector products that form its
 * transformation and the QL plane rotations of its vectors path (f64x2, 1.3–3.5× the
 * equivalent JS), and the AdamW update of the tuners'
 * plain-array parameters (f32x4). JavaScript engines do not vectorise. Everything works without
 * them: {@link linalgWasm} and {@link adamwWasm} return null where WebAssembly SIMD is
 * unavailable (or NMLAB_LINALG_WASM=0), and callers use JS loops.
 *
 * The eigensolver shares one instance per process; its linear memory grows to the largest
 * problem seen (up to {@link WASM_MAX_BYTES}) and is reused by every call, so a call allocates
 * nothing. An optimiser gets an instance of its own whose memory never grows (views stay valid).
 */
import { KERNELS_WASM_BASE64 } from './kernels.wasm';

// The project's TypeScript lib has no DOM/WebAssembly typings; declare the few members used.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}

/** Largest working set the kernels take on (bigger problems use the JS loops). */
export const WASM_MAX_BYTES = 512 * 1024 * 1024;

/** The instantiated kernels and their memory. */
export interface LinalgWasm {
  memory: WasmMemory;
  /** See kernels.ll: byte offsets into `memory` for the pointer arguments. */
  fused2(a0: number, a1: number, v: number, w: number, u: number, p: number, len: number, w0: number, v0: number, w1: number, v1: number, u0: number, u1: number, out: number): void;
  /** See kernels.ll: applies I − τuuᵀ to ncols columns of length len, x + j·stride doubles apart. */
  reflect(u: number, x: number, len: number, tau: number, ncols: number, stride: number): void;
  /** See kernels.ll: a QL sweep's rotations (c[i], s[i]), i = hi−1..lo, on columns i, i+1 of the n×n v. */
  rotseq(v: number, n: number, lo: number, hi: number, c: number, s: number): void;
  /** See kernels.ll: out[0] = x0·y, out[1] = x1·y over len doubles. */
  dot2(x0: number, x1: number, y: number, len: number, out: number): void;
  /** Grows memory to hold at least `bytes`; returns false when that exceeds the limit. */
  reserve(bytes: number): boolean;
}

let cached: LinalgWasm | null | undefined;
let compiled: { WA: WasmApi; module: object } | null | undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable or switched off. */
function kernelsModule(): { WA: WasmApi; module: object } | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (process.env.NMLAB_LINALG_WASM === '0' || !WA) return compiled;
  try {
    compiled = { WA, module: new WA.Module(Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0))) };
  } catch {
    compiled = null; // no SIMD support (old runtime): the JS loops do the work
  }
  return compiled;
}

/** The AdamW kernel (kernels.ll) on a memory of its own, sized once. */
export interface AdamWWasm {
  /** Float32 views made over this buffer stay valid: the memory never grows after creation. */
  buffer: ArrayBuffer;
  /** See kernels.ll: byte offsets into `buffer` for p, g, m, v; n elements. */
  adamw(p: number, g: number, m: number, v: number, n: number, beta1: number, c1: number, beta2: number, c2: number, decay: number, step: number, invSbc2: number, eps: number): void;
}

/**
 * A private instance of the kernels with `bytes` of memory that nothing else grows, for callers
 * that keep typed-array views into it across calls (an optimiser's parameters and moments);
 * null where WebAssembly SIMD is unavailable or `bytes` exceeds {@link WASM_MAX_BYTES}.
 */
export function adamwWasm(bytes: number): AdamWWasm | null {
  const c = kernelsModule();
  if (!c || bytes > WASM_MAX_BYTES) return null;
  const memory = new c.WA.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
  const instance = new c.WA.Instance(c.module, { env: { __linear_memory: memory } });
  return { buffer: memory.buffer, adamw: instance.exports.adamw as AdamWWasm['adamw'] };
}

/** The kernels, or null where they cannot run. */
export function linalgWasm(): LinalgWasm | null {
  if (cached !== undefined) return cached;
  cached = null;
  const c = kernelsModule();
  if (!c) return cached;
  try {
    const memory = new c.WA.Memory({ initial: 1 });
    const instance = new c.WA.Instance(c.module, { env: { __linear_memory: memory } });
    const fused2 = instance.exports.fused2 as LinalgWasm['fused2'];
    const reflect = instance.exports.reflect as LinalgWasm['reflect'];
    const dot2 = instance.exports.dot2 as LinalgWasm['dot2'];
    const rotseq = instance.exports.rotseq as LinalgWasm['rotseq'];
    cached = {
      memory,
      fused2,
      reflect,
      dot2,
      rotseq,
      reserve(need: number): boolean {
        if (need > WASM_MAX_BYTES) return false;
        const have = memory.buffer.byteLength;
        if (need > have) memory.grow(Math.ceil((need - have) / 65536));
        return true;
      },
    };
  } catch {
    cached = null;
  }
  return cached;
}
