/**
 * Conv2D gradients for the wasm backend, expressed as forward convolutions so XNNPACK does
 * the arithmetic.
 *
 * - `Conv2DBackpropFilter` is missing from tfjs-backend-wasm 4.22 (tfjs#8474). With x
 *   [N,H,W,Cᵢ], dy [N,OH,OW,Cₒ] and stride s, dW[kh,kw,ci,co] = Σ_{n,oh,ow}
 *   x̃[n, s·oh+kh, s·ow+kw, ci]·dy[n,oh,ow,co] (x̃ the padded input). Swapping the roles of
 *   batch and channels turns that sum into one convolution: input xᵀ = [Cᵢ,H,W,N], filter
 *   dyᵀ = [OH,OW,N,Cₒ], stride 1, dilation s, output [Cᵢ,KH,KW,Cₒ]. It costs the same
 *   multiply-adds as the forward pass, with no im2col buffer.
 * - `Conv2DBackpropInput` exists on wasm but is a naive loop, 5–6× slower than the forward
 *   conv at the sizes NMLab trains. dx is the "full" correlation of dy, with zeros inserted
 *   between its rows/columns for stride s, against the filter rotated 180° with its channel
 *   axes swapped; that is again one XNNPACK convolution.
 *
 * NHWC only, dilations 1 (tfjs's own Conv2D gradient asserts dilations 1).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Conv2DBackpropFilterAttrs, Conv2DBackpropInputAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { NmlabError } from '../../../shared/errors';
import { type Shape4, withScope } from './kernelScope';

function assertNhwc(kernel: string, dataFormat: string | undefined): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new NmlabError('UNSUPPORTED', `${kernel} on wasm supports dataFormat 'NHWC' only (got '${dataFormat}'); transpose the input to NHWC`);
  }
}

/** dW of a 2-D convolution, as one stride-1, dilation-s convolution of x by dy. */
export function conv2dBackpropFilterKernel(backendName: string): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
    assertNhwc('Conv2DBackpropFilter', dataFormat);
    const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w } = info;
    const { top, left } = info.padInfo;
    // Rows/columns of the padded input the forward pass actually read.
    const bottom = kh + sh * (oh - 1) - top - h;
    const right = kw + sw * (ow - 1) - left - w;
    return withScope(backend, backendName, (s) => {
      const xT = s.transpose(x, [3, 1, 2, 0]); // [Ci, H, W, N]
      const dyT = s.transpose(dy, [1, 2, 0, 3]); // [OH, OW, N, Co]
      // When the forward pass left input rows/columns unread (bottom/right < 0), the
      // convolution yields extra filter rows/columns at the end: cut them from the small
      // output rather than the large input (wasm's Slice copies its whole input to JS).
      const explicit: Array<[number, number]> = [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]];
      let dw = s.run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [sh, sw], dimRoundingMode: undefined });
      if (bottom < 0 || right < 0) dw = s.slice(dw, [0, 0, 0, 0], [xT.shape[0], kh, kw, dy.shape[3]]);
      return s.transpose(dw, [1, 2, 0, 3]); // [KH, KW, Ci, Co]
    });
  };
}

/** dx of a 2-D convolution, as one stride-1 convolution of zero-upsampled dy by the rotated filter. */
export function conv2dBackpropInputKernel(backendName: string): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
    assertNhwc('Conv2DBackpropInput', dataFormat);
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as Shape4, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w } = info;
    return withScope(backend, backendName, (s) => {
      const up = s.upsampleZeros(dy, sh, sw); // [N, OH·sh, OW·sw, Co]
      const [, hu, wu] = up.shape as Shape4;
      // out[h] = Σ_j up[h + j − T]·Wrot[j] with T = KH−1−padTop; B makes the output H tall.
      const padTop = kh - 1 - info.padInfo.top;
      const padLeft = kw - 1 - info.padInfo.left;
      const padBottom = h - hu + kh - 1 - padTop;
      const padRight = w - wu + kw - 1 - padLeft;
      const negative = padTop < 0 || padLeft < 0 || padBottom < 0 || padRight < 0;
      const src = negative ? s.padOrCrop(up, Math.min(0, padTop), Math.min(0, padBottom), Math.min(0, padLeft), Math.min(0, padRight)) : up;
      const rotated = s.run('Reverse', { x: filter }, { dims: [0, 1] });
      const swapped = s.transpose(rotated, [0, 1, 3, 2]); // [KH, KW, Co, Ci]
      const explicit: Array<[number, number]> = [[0, 0], [Math.max(0, padTop), Math.max(0, padBottom)], [Math.max(0, padLeft), Math.max(0, padRight)], [0, 0]];
      return s.run('Conv2D', { x: src, filter: swapped }, { strides: [1, 1], pad: explicit, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined });
    });
  };
}

export function conv2dBackpropFilterConfig(backendName = 'wasm'): KernelConfig {
  return { kernelName: 'Conv2DBackpropFilter', backendName, kernelFunc: conv2dBackpropFilterKernel(backendName) };
}

export function conv2dBackpropInputConfig(backendName = 'wasm'): KernelConfig {
  return { kernelName: 'Conv2DBackpropInput', backendName, kernelFunc: conv2dBackpropInputKernel(backendName) };
}
