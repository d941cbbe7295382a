/**
 * Depthwise-conv gradients for the wasm backend, which has neither
 * `DepthwiseConv2dNativeBackpropFilter` nor `DepthwiseConv2dNativeBackpropInput` (4.22).
 *
 * With x [N,H,W,C], filter [KH,KW,C,M] and dy [N,OH,OW,C·M] (channel c·M+m):
 * - dW[i,j,c,m] = Σ_{n,oh,ow} x̃[n, s·oh+i, s·ow+j, c]·dy[n,oh,ow,c,m]: one strided read
 *   of the padded input per filter tap, multiplied by dy and summed over n, oh, ow;
 * - dx = Σ_{i,j,m} of dy, zero-upsampled by the stride and padded "full", shifted by the
 *   tap and weighted by the rotated filter: one slice, multiply and sum per tap.
 * KH·KW passes of element-wise kernels: not the fastest, but exact and small, and NMLab's
 * backbones do not use depthwise layers in training. NHWC, dilations 1 (as tfjs asserts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DepthwiseConv2dNativeBackpropFilterAttrs, DepthwiseConv2dNativeBackpropInputAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { type Shape4, pair, withScope } from './kernelScope';
import { NmlabError } from '../../../shared/errors';

function assertNoDilation(kernel: string, dilations: number | [number, number] | undefined): void {
  const [dh, dw] = pair(dilations);
  if (dh !== 1 || dw !== 1) throw new NmlabError('UNSUPPORTED', `${kernel} on wasm supports dilations 1 only (got [${dh}, ${dw}])`);
}

export function depthwiseBackpropFilterKernel(backendName: string): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
    assertNoDilation('DepthwiseConv2dNativeBackpropFilter', dilations);
    const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filterShape, strides, 1, pad, dimRoundingMode, true);
    const { batchSize: n, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w, inChannels: c } = info;
    const m = filterShape[3];
    const { top, left } = info.padInfo;
    return withScope(backend, backendName, (s) => {
      const xp = s.padOrCrop(x, top, kh + sh * (oh - 1) - top - h, left, kw + sw * (ow - 1) - left - w);
      const dy3 = s.reshape(dy, [n * oh * ow, c, m]);
      const taps: TensorInfo[] = [];
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const xs = s.stridedSlice(xp, [0, i, j, 0], [n, i + sh * (oh - 1) + 1, j + sw * (ow - 1) + 1, c], [1, sh, sw, 1]);
          const prod = s.multiply(s.reshape(xs, [n * oh * ow, c, 1]), dy3);
          taps.push(s.reshape(s.sum(prod, [0]), [1, c, m]));
        }
      }
      return s.reshape(s.concat(taps, 0), [kh, kw, c, m]);
    });
  };
}

export function depthwiseBackpropInputKernel(backendName: string): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
    assertNoDilation('DepthwiseConv2dNativeBackpropInput', dilations);
    const fShape = filter.shape as Shape4;
    const info = tf.backend_util.computeConv2DInfo(inputShape, fShape, strides, 1, pad, dimRoundingMode, true);
    const { batchSize: n, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w, inChannels: c } = info;
    const m = fShape[3];
    return withScope(backend, backendName, (s) => {
      const up = s.upsampleZeros(dy, sh, sw);
      const [, hu, wu] = up.shape as Shape4;
      // "Full" padding so that tap j of the rotated filter reads up[h + j − (KH−1−padTop)].
      const t = kh - 1 - info.padInfo.top;
      const l = kw - 1 - info.padInfo.left;
      const full = s.padOrCrop(up, t, h + kh - 1 - hu - t, l, w + kw - 1 - wu - l);
      const full5 = s.reshape(full, [n, h + kh - 1, w + kw - 1, c, m]);
      let acc: TensorInfo | null = null;
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          // Rotated tap (i, j) is the original filter's (KH−1−i, KW−1−j).
          const wTap = s.slice(filter, [kh - 1 - i, kw - 1 - j, 0, 0], [1, 1, c, m]);
          const win = s.slice(full5, [0, i, j, 0, 0], [n, h, w, c, m]);
          const contrib = s.sum(s.multiply(win, s.reshape(wTap, [1, 1, 1, c, m])), [4]);
          acc = acc === null ? contrib : s.add(acc, contrib);
        }
      }
      if (acc === null) throw new NmlabError('BAD_REQUEST', 'DepthwiseConv2dNativeBackpropInput: empty filter');
      return acc;
    });
  };
}

export function depthwiseBackpropFilterConfig(backendName = 'wasm'): KernelConfig {
  return { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName, kernelFunc: depthwiseBackpropFilterKernel(backendName) };
}

export function depthwiseBackpropInputConfig(backendName = 'wasm'): KernelConfig {
  return { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName, kernelFunc: depthwiseBackpropInputKernel(backendName) };
}
