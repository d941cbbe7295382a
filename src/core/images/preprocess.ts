/**
 * Turning pixels into a model's input tensor, in timm's eval order (timm/data/transforms_factory.py):
 * resize the shorter side to floor(size / cropPct), centre-crop to size, scale to [0,1],
 * subtract the mean and divide by the std, then lay out as NCHW or NHWC.
 *
 * Resizing is bilinear with half-pixel centres and no antialiasing, exactly
 * `torch.nn.functional.interpolate(mode='bilinear', align_corners=False)`, computed in float32
 * on the unrounded pixels (PIL would round to uint8 after resizing and antialias downscales).
 * Resize and crop are fused: only the pixels that survive the crop are computed.
 */
import { NmlabError } from '../../shared/errors';
import type { PreprocessSpec, ResolvedPreprocess, TensorInfo } from '../../shared/contract/backbones';
import { toChannels, type RawImage } from './image';

/** What NMLab assumes when neither the user, the backbone.json nor the model says otherwise. */
export const PREPROCESS_DEFAULTS = {
  mean: [0],
  std: [1],
  interpolation: 'bilinear',
  cropPct: 1,
  layout: 'nchw',
  scale: 1 / 255,
} as const;

/** Channels, height, width and layout read off a model's image input shape, where they are static. */
export function inferFromInput(input: TensorInfo | undefined): PreprocessSpec {
  if (!input || input.shape.length !== 4) return {};
  const [, a, b, c] = input.shape;
  const num = (d: number | string | null): number | null => (typeof d === 'number' && d > 0 ? d : null);
  const [na, nb, nc] = [num(a), num(b), num(c)];
  const chan = (d: number | null) => d === 1 || d === 3;
  // NCHW when the second dim is 1 or 3 (and the last is not), NHWC when only the last is.
  if (chan(na) && !chan(nc) && nb && nc) return { layout: 'nchw', inputSize: [na!, nb, nc] };
  if (chan(nc) && !chan(na) && na && nb) return { layout: 'nhwc', inputSize: [nc!, na, nb] };
  if (chan(na) && nb && nc) return { layout: 'nchw', inputSize: [na!, nb, nc] };
  return {};
}

/**
 * Resolve preprocessing in timm's order (timm/data/config.py resolve_data_config): explicit
 * overrides, then the backbone's declared spec, then what the model's input shape fixes,
 * then defaults. A mean/std of length 1 is broadcast to every channel.
 * `what` names the backbone in error messages.
 */
export function resolvePreprocess(
  spec: PreprocessSpec | undefined,
  overrides: PreprocessSpec = {},
  modelInput?: TensorInfo,
  what = 'the backbone',
): ResolvedPreprocess {
  const inferred = inferFromInput(modelInput);
  const pick = <K extends keyof PreprocessSpec>(k: K): PreprocessSpec[K] => overrides[k] ?? spec?.[k] ?? inferred[k];
  const inputSize = pick('inputSize');
  if (!inputSize) {
    throw new NmlabError('BAD_REQUEST', `the input size of ${what} is not fixed by the model; give it (--size N, or preprocess.inputSize in backbone.json)`);
  }
  const [c] = inputSize;
  if (c !== 1 && c !== 3) throw new NmlabError('UNSUPPORTED', `${what} wants ${c} input channels; only 1 (grey) and 3 (RGB) are supported`);
  const perChannel = (v: readonly number[], name: string): number[] => {
    if (v.length === c) return [...v];
    if (v.length === 1) return new Array<number>(c).fill(v[0]);
    throw new NmlabError('BAD_REQUEST', `${name} has ${v.length} values but ${what} takes ${c} channels; give 1 or ${c}`);
  };
  if (inferred.inputSize && (inferred.inputSize[0] !== c || inferred.inputSize[1] !== inputSize[1] || inferred.inputSize[2] !== inputSize[2])) {
    throw new NmlabError(
      'BAD_REQUEST',
      `${what} takes input ${inferred.inputSize.join('×')} (C×H×W) but the preprocessing asks for ${inputSize.join('×')}; drop the size override or fix backbone.json`,
    );
  }
  return {
    inputSize: [c, inputSize[1], inputSize[2]],
    mean: perChannel(pick('mean') ?? PREPROCESS_DEFAULTS.mean, 'mean'),
    std: perChannel(pick('std') ?? PREPROCESS_DEFAULTS.std, 'std'),
    interpolation: pick('interpolation') ?? PREPROCESS_DEFAULTS.interpolation,
    cropPct: pick('cropPct') ?? PREPROCESS_DEFAULTS.cropPct,
    layout: pick('layout') ?? PREPROCESS_DEFAULTS.layout,
    scale: pick('scale') ?? PREPROCESS_DEFAULTS.scale,
  };
}

/** Python's round(): halves go to the even neighbour (torchvision's CenterCrop uses it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The geometry of resize-then-crop for one source size: the resized size (torchvision
 * `Resize(int)`: shorter side to floor(size/cropPct), the other side truncated in proportion;
 * a non-square target resizes both sides, as timm does) and the crop offset.
 */
export function cropGeometry(srcH: number, srcW: number, outH: number, outW: number, cropPct: number) {
  let rh: number;
  let rw: number;
  if (outH === outW) {
    const s = Math.floor(outH / cropPct + 1e-9);
    if (srcH <= srcW) [rh, rw] = [s, Math.trunc((s * srcW) / srcH)];
    else [rh, rw] = [Math.trunc((s * srcH) / srcW), s];
  } else {
    [rh, rw] = [Math.floor(outH / cropPct + 1e-9), Math.floor(outW / cropPct + 1e-9)];
  }
  if (srcH === outH && srcW === outW && cropPct === 1) [rh, rw] = [srcH, srcW];
  return { resizedH: rh, resizedW: rw, top: roundHalfEven((rh - outH) / 2), left: roundHalfEven((rw - outW) / 2) };
}

/** Per output row/column: the two source indices and the weight of the second (align_corners=False). */
function axisTaps(src: number, resized: number, out: number, offset: number, nearest: boolean) {
  const i0 = new Int32Array(out);
  const i1 = new Int32Array(out);
  const w1 = new Float32Array(out);
  const scale = src / resized;
  for (let o = 0; o < out; o++) {
    const d = o + offset;
    if (nearest) {
      // torch 'nearest': floor(d * scale), clamped.
      const s = Math.min(Math.floor(d * scale), src - 1);
      i0[o] = s;
      i1[o] = s;
      continue;
    }
    let s = (d + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    const f = Math.floor(s);
    const a = Math.min(f, src - 1);
    i0[o] = a;
    i1[o] = Math.min(a + 1, src - 1);
    w1[o] = s - f;
  }
  return { i0, i1, w1 };
}

/**
 * Preprocess one image into `out` at `offset` (in elements), in the resolved layout.
 * The image is converted to the model's channel count first (grey→RGB replicate, RGB→grey luma).
 */
export function preprocessInto(img: RawImage, p: ResolvedPreprocess, out: Float32Array, offset: number): void {
  const [c, oh, ow] = p.inputSize;
  const src = toChannels(img, c as 1 | 3);
  sampleInto(src, p, cropGeometry(src.height, src.width, oh, ow, p.cropPct), out, offset);
}

type Geometry = ReturnType<typeof cropGeometry>;

function sampleInto(src: RawImage, p: ResolvedPreprocess, g: Geometry, out: Float32Array, offset: number): void {
  const [c, oh, ow] = p.inputSize;
  const { resizedH, resizedW, top, left } = g;
  const nearest = p.interpolation === 'nearest';
  const ty = axisTaps(src.height, resizedH, oh, top, nearest);
  const tx = axisTaps(src.width, resizedW, ow, left, nearest);
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    // (v*scale - mean)/std folded into one multiply-add.
    a[k] = p.scale / p.std[k];
    b[k] = -p.mean[k] / p.std[k];
  }
  const d = src.data;
  const sw = src.width;
  const planeSize = oh * ow;
  const nchw = p.layout === 'nchw';
  for (let y = 0; y < oh; y++) {
    const y0 = ty.i0[y] * sw;
    const y1 = ty.i1[y] * sw;
    const wy = ty.w1[y];
    for (let x = 0; x < ow; x++) {
      const x0 = tx.i0[x];
      const x1 = tx.i1[x];
      const wx = tx.w1[x];
      for (let k = 0; k < c; k++) {
        const v00 = d[(y0 + x0) * c + k];
        const v01 = d[(y0 + x1) * c + k];
        const v10 = d[(y1 + x0) * c + k];
        const v11 = d[(y1 + x1) * c + k];
        const top_ = v00 + (v01 - v00) * wx;
        const bot = v10 + (v11 - v10) * wx;
        const v = top_ + (bot - top_) * wy;
        const idx = nchw ? offset + k * planeSize + y * ow + x : offset + (y * ow + x) * c + k;
        out[idx] = v * a[k] + b[k];
      }
    }
  }
}

/** Preprocess images into one float32 batch tensor of shape [n, ...] in the resolved layout. */
export function preprocessBatch(images: RawImage[], p: ResolvedPreprocess): Float32Array {
  const per = p.inputSize[0] * p.inputSize[1] * p.inputSize[2];
  const out = new Float32Array(images.length * per);
  images.forEach((img, i) => preprocessInto(img, p, out, i * per));
  return out;
}

/** The input tensor's dims for a batch of `n` in the resolved layout. */
export function batchDims(p: ResolvedPreprocess, n: number): number[] {
  const [c, h, w] = p.inputSize;
  return p.layout === 'nchw' ? [n, c, h, w] : [n, h, w, c];
}

/** Resize an image to exactly height×width (stretching, no crop), rounding back to uint8: for dataset import of mixed sizes. */
export function resizeImage(img: RawImage, height: number, width: number, interpolation: 'bilinear' | 'nearest' = 'bilinear'): RawImage {
  if (img.height === height && img.width === width) return img;
  const c = img.channels;
  const tmp = new Float32Array(height * width * c);
  // Stretch both axes to the target (no crop): dataset import keeps every pixel of the frame.
  const p: ResolvedPreprocess = { inputSize: [c, height, width], mean: new Array(c).fill(0), std: new Array(c).fill(1), interpolation, cropPct: 1, layout: 'nhwc', scale: 1 };
  sampleInto(img, p, { resizedH: height, resizedW: width, top: 0, left: 0 }, tmp, 0);
  const data = new Uint8Array(tmp.length);
  for (let i = 0; i < tmp.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(tmp[i])));
  return { width, height, channels: c, data };
}
