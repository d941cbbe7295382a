/**
 * NMLab's additions to the tfjs wasm backend (NOTES §2, tfjs#8474): the convolution
 * gradients that tfjs-backend-wasm 4.22 lacks, and a faster Conv2DBackpropInput.
 *
 * Audit of what CNN training needs on wasm 4.22: Conv2D, Conv2DBackpropInput, MaxPoolGrad,
 * AvgPoolGrad, FusedBatchNorm, FusedDepthwiseConv2D, Relu/Step, BatchMatMul are present (the
 * BatchNorm and pooling-mean gradients are composed of such ops in tfjs-core); missing are
 * Conv2DBackpropFilter and both depthwise gradients, provided here.
 *
 * `registerWasmKernels()` is idempotent. It acts only once the wasm package has registered
 * its kernels (importing it does), since that import would otherwise overwrite a replaced
 * kernel; it need not wait for the backend to initialise, as none of these kernels needs a
 * wasm setup function.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterConfig, conv2dBackpropInputConfig } from './conv2dBackprop';
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from './depthwiseBackprop';

export interface WasmKernelReport {
  /** Kernels that were missing and are now provided. */
  added: string[];
  /** Kernels wasm had whose implementation NMLab replaced (faster), originals kept. */
  replaced: string[];
}

/** Missing on wasm 4.22: registered only when absent (a future tfjs may ship its own). */
const MISSING: Array<(backendName: string) => KernelConfig> = [conv2dBackpropFilterConfig, depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig];

/** Present on wasm but slow (a naive C loop): replaced by an XNNPACK-backed composite. */
const FASTER: Array<(backendName: string) => KernelConfig> = [conv2dBackpropInputConfig];

const originals = new Map<string, KernelConfig>();
const ours = new Set<string>();

/**
 * Register NMLab's wasm kernels. With `replaceSlow: false` the stock Conv2DBackpropInput is
 * left in place (the bench compares both).
 */
export function registerWasmKernels(options: { replaceSlow?: boolean } = {}): WasmKernelReport {
  const backendName = 'wasm';
  const report: WasmKernelReport = { added: [], replaced: [] };
  if (!tf.getKernel('Conv2D', backendName)) return report;
  for (const make of MISSING) {
    const config = make(backendName);
    if (tf.getKernel(config.kernelName, backendName)) continue;
    tf.registerKernel(config);
    ours.add(config.kernelName);
    report.added.push(config.kernelName);
  }
  if (options.replaceSlow ?? true) {
    for (const make of FASTER) {
      const config = make(backendName);
      if (originals.has(config.kernelName)) continue;
      const original = tf.getKernel(config.kernelName, backendName);
      if (original) {
        originals.set(config.kernelName, original);
        tf.unregisterKernel(config.kernelName, backendName);
      }
      tf.registerKernel(config);
      ours.add(config.kernelName);
      report.replaced.push(config.kernelName);
    }
  }
  return report;
}

/** Put back wasm's own implementations of the kernels NMLab replaced (for benchmarks). */
export function restoreStockWasmKernels(): void {
  for (const [name, original] of originals) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(original);
    ours.delete(name);
  }
  originals.clear();
}

/** Names of the wasm kernels currently provided by NMLab. */
export function nmlabWasmKernels(): string[] {
  return [...ours].sort();
}
