/**
 * Compose new wasm kernels out of the wasm backend's existing ones, at the TensorInfo level.
 *
 * A kernel function runs inside the engine with the tape off and must return TensorInfos
 * the engine then owns; tensors made with `tf.*` ops inside it would be tracked by the
 * caller's scope instead. So composite kernels here call other kernels' `kernelFunc`s
 * directly (looked up at call time, so overrides such as the transpose-first matMul apply)
 * and free every intermediate themselves through the backend's reference counts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { NmlabError } from '../../../shared/errors';

/** The part of a tfjs backend a composite kernel needs. */
export interface RefCountedBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

export function isRefCountedBackend(b: unknown): b is RefCountedBackend {
  return typeof b === 'object' && b !== null && typeof (b as RefCountedBackend).disposeData === 'function';
}

export type Shape4 = [number, number, number, number];

/**
 * Runs kernels of one backend and remembers every output as a temporary until `keep`
 * releases it to the caller; `dispose` frees the rest (also on the error path).
 */
export class KernelScope {
  private readonly temps: TensorInfo[] = [];

  constructor(
    private readonly backend: unknown,
    private readonly backendName: string,
  ) {}

  /** Run the registered kernel `name` and track its (single) output. */
  run(name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const kernel = tf.getKernel(name, this.backendName);
    if (!kernel) throw new NmlabError('UNSUPPORTED', `kernel '${name}' is not registered for backend '${this.backendName}'; the composite kernel cannot run`);
    const out = kernel.kernelFunc({ inputs, attrs: attrs as NamedAttrMap, backend: this.backend as never });
    const info = Array.isArray(out) ? out[0] : out;
    this.temps.push(info);
    return info;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    return this.run('Slice', { x }, { begin, size });
  }

  pad(x: TensorInfo, paddings: Array<[number, number]>): TensorInfo {
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }

  /**
   * Pad (positive amounts) or crop (negative amounts) the two spatial axes of an NHWC tensor,
   * in that order: crop first so no padded zeros are wasted.
   */
  padOrCrop(x: TensorInfo, top: number, bottom: number, left: number, right: number): TensorInfo {
    const [n, h, w, c] = x.shape as Shape4;
    let cur = x;
    if (top < 0 || bottom < 0 || left < 0 || right < 0) {
      const t = Math.max(0, -top);
      const l = Math.max(0, -left);
      cur = this.slice(cur, [0, t, l, 0], [n, h - t - Math.max(0, -bottom), w - l - Math.max(0, -right), c]);
    }
    if (top > 0 || bottom > 0 || left > 0 || right > 0) {
      cur = this.pad(cur, [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]]);
    }
    return cur;
  }

  /**
   * Insert `sh − 1` zero rows after every row and `sw − 1` zero columns after every column
   * of an NHWC tensor: [N,H,W,C] → [N,H·sh,W·sw,C]. The adjoint of a strided read; the
   * trailing zeros are kept (callers account for them) because wasm's strided Slice is a JS
   * loop that would cost more than the zeros.
   */
  upsampleZeros(x: TensorInfo, sh: number, sw: number): TensorInfo {
    if (sh === 1 && sw === 1) return x;
    const [n, h, w, c] = x.shape as Shape4;
    const x6 = this.reshape(x, [n, h, 1, w, 1, c]);
    const padded = this.pad(x6, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    return this.reshape(padded, [n, h * sh, w * sw, c]);
  }

  /** Strided read of a 4-D tensor: x[b0 : e0 : st0, …] (no masks). */
  stridedSlice(x: TensorInfo, begin: number[], end: number[], strides: number[]): TensorInfo {
    return this.run('StridedSlice', { x }, { begin, end, strides, beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 });
  }

  multiply(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Multiply', { a, b });
  }

  add(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('Add', { a, b });
  }

  sum(x: TensorInfo, axis: number[]): TensorInfo {
    return this.run('Sum', { x }, { axis, keepDims: false });
  }

  /** Concatenate along `axis` (the Concat kernel takes its inputs as an array). */
  concat(xs: TensorInfo[], axis: number): TensorInfo {
    return this.run('Concat', xs as unknown as Record<string, TensorInfo>, { axis });
  }

  /** Stop tracking `t` (it becomes the caller's output). */
  keep(t: TensorInfo): TensorInfo {
    const i = this.temps.lastIndexOf(t);
    if (i >= 0) this.temps.splice(i, 1);
    return t;
  }

  /** Free every temporary still tracked. */
  dispose(): void {
    if (!isRefCountedBackend(this.backend)) return;
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}

/** Run `body` with a scope whose temporaries are freed afterwards; `body` returns a kept output. */
export function withScope(backend: unknown, backendName: string, body: (s: KernelScope) => TensorInfo): TensorInfo {
  const scope = new KernelScope(backend, backendName);
  try {
    return scope.keep(body(scope));
  } finally {
    scope.dispose();
  }
}

/** Normalise a stride/dilation attribute to [h, w]. */
export function pair(v: number | [number, number] | number[] | undefined, fallback = 1): [number, number] {
  if (v === undefined) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0], v[1] ?? v[0]];
}
