/**
 * WebAssembly SIMD kernels for the hot loops of the eigensolver (see kernels.ll): the fused
 * Householder pass of the values-only reduction and the QL plane rotations of the vectors
 * path. JavaScript engines do not vectorise; these f64x2 loops are 1.3–3.5× faster than the
 * equivalent JS. Everything works without them: {@link linalgWasm} returns null
 * where WebAssembly SIMD is unavailable (or NMLAB_LINALG_WASM=0), and callers use JS loops.
 *
 * One module instance per process; its linear memory grows to the largest problem seen (up to
 * {@link WASM_MAX_BYTES}) and is reused by every call, so a call allocates nothing.
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
  /** See kernels.ll: rotates columns x and y (byte offsets) of length len by (c, s). */
  rot(x: number, y: number, len: number, c: number, s: number): void;
  /** Grows memory to hold at least `bytes`; returns false when that exceeds the limit. */
  reserve(bytes: number): boolean;
}

let cached: LinalgWasm | null | undefined;

/** The kernels, or null where they cannot run. */
export function linalgWasm(): LinalgWasm | null {
  if (cached !== undefined) return cached;
  cached = null;
  const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (process.env.NMLAB_LINALG_WASM === '0' || !WA) return cached;
  try {
    const bytes = Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
    const memory = new WA.Memory({ initial: 1 });
    const instance = new WA.Instance(new WA.Module(bytes), { env: { __linear_memory: memory } });
    const fused2 = instance.exports.fused2 as LinalgWasm['fused2'];
    const rot = instance.exports.rot as LinalgWasm['rot'];
    cached = {
      memory,
      fused2,
      rot,
      reserve(need: number): boolean {
        if (need > WASM_MAX_BYTES) return false;
        const have = memory.buffer.byteLength;
        if (need > have) memory.grow(Math.ceil((need - have) / 65536));
        return true;
      },
    };
  } catch {
    cached = null; // no SIMD support (old runtime): the JS loops do the work
  }
  return cached;
}
