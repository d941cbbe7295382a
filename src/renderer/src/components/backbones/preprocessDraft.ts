/**
 * The preprocessing form's text fields and their conversion to a `PreprocessSpec` (timm's
 * order: what the user sets here overrides the model's input shape and NMLab's defaults).
 * Fields left empty are left out, so the backend's `resolvePreprocess` fills them.
 */
import type { PreprocessSpec } from '../../../../shared/contract/backbones';

export interface PreprocessDraft {
  channels: string;
  height: string;
  width: string;
  mean: string;
  std: string;
  layout: '' | 'nchw' | 'nhwc';
  cropPct: string;
  /** A number or a fraction such as `1/255`. */
  scale: string;
  interpolation: '' | 'bilinear' | 'nearest';
}

export function draftFrom(spec: PreprocessSpec): PreprocessDraft {
  return {
    channels: spec.inputSize ? String(spec.inputSize[0]) : '',
    height: spec.inputSize ? String(spec.inputSize[1]) : '',
    width: spec.inputSize ? String(spec.inputSize[2]) : '',
    mean: spec.mean?.join(', ') ?? '',
    std: spec.std?.join(', ') ?? '',
    layout: spec.layout ?? '',
    cropPct: spec.cropPct !== undefined ? String(spec.cropPct) : '',
    scale: spec.scale !== undefined ? (Math.abs(spec.scale - 1 / 255) < 1e-12 ? '1/255' : String(spec.scale)) : '1/255',
    interpolation: spec.interpolation ?? '',
  };
}

function numberList(text: string, what: string): number[] | undefined {
  const parts = text
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (!parts.length) return undefined;
  const values = parts.map(Number);
  if (values.some((v) => !Number.isFinite(v))) throw new Error(`${what} must be numbers separated by commas`);
  return values;
}

function parseScale(text: string): number | undefined {
  const t = text.trim();
  if (!t) return undefined;
  const frac = /^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/.exec(t);
  const v = frac ? Number(frac[1]) / Number(frac[2]) : Number(t);
  if (!Number.isFinite(v) || v <= 0) throw new Error('scale must be a positive number such as 1/255 or 0.00392');
  return v;
}

/** Convert the form to a spec; throws an Error with a readable message on bad input. */
export function specFrom(d: PreprocessDraft): PreprocessSpec {
  const spec: PreprocessSpec = {};
  const dims = [d.channels, d.height, d.width].map((s) => s.trim());
  if (dims.some(Boolean)) {
    const [c, h, w] = dims.map(Number);
    if (![c, h, w].every((v) => Number.isInteger(v) && v > 0)) throw new Error('input size needs whole channels, height and width (or leave all three empty)');
    if (c !== 1 && c !== 3) throw new Error('input channels must be 1 (grey) or 3 (RGB)');
    spec.inputSize = [c, h, w];
  }
  const mean = numberList(d.mean, 'mean');
  const std = numberList(d.std, 'std');
  if (std?.some((v) => v <= 0)) throw new Error('std values must be positive');
  if (mean) spec.mean = mean;
  if (std) spec.std = std;
  if (d.layout) spec.layout = d.layout;
  if (d.cropPct.trim()) {
    const v = Number(d.cropPct);
    if (!(v > 0 && v <= 1)) throw new Error('crop pct must be in (0, 1]');
    spec.cropPct = v;
  }
  const scale = parseScale(d.scale);
  if (scale !== undefined) spec.scale = scale;
  if (d.interpolation) spec.interpolation = d.interpolation;
  return spec;
}
