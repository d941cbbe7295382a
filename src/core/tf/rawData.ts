/**
 * Direct access to a float32 tensor's storage on the backends that keep it in JS-visible memory
 * (wasm: a view into the module's heap; cpu: the backend's own array), so that element-wise
 * updates touching several large tensors (e.g. the optimiser step) can run as one JS loop
 * instead of a dozen kernel launches that each allocate a full-size result.
 *
 * Rules for callers: take the views after the last allocation (a heap growth detaches wasm
 * views), write only into tensors you own exclusively, and never write in place into a tensor
 * that may be a matMul weight operand (XNNPACK caches packed weights per tensor id).
 */
import * as tf from '@tensorflow/tfjs-core';

interface WasmLike {
  typedArrayFromHeap(t: tf.Tensor): Float32Array | Int32Array | Uint8Array;
}
interface CpuLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
}

/** The storage of `t` as a Float32Array view, or null when the backend does not expose it. */
export function rawFloat32(t: tf.Tensor): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const name = tf.getBackend();
  const backend = tf.backend() as unknown;
  if (name === 'wasm') {
    const view = (backend as WasmLike).typedArrayFromHeap(t);
    return view instanceof Float32Array ? view : null;
  }
  if (name === 'cpu') {
    const values = (backend as CpuLike).data.get(t.dataId)?.values;
    return values instanceof Float32Array && values.length === t.size ? values : null;
  }
  return null;
}
