/**
 * "Preprocessing you can check" (issue 10 item 5): before a backbone's features are trusted,
 * show what its preprocessing does to a sample of a dataset — per-channel mean and std of the
 * tensor the model receives — and, where the model has a classification output whose width is
 * the dataset's class count, its accuracy on that sample. Warnings name what looks wrong: an
 * input far from the mean-0/std-1 most models are trained on, raw 0–255 values, or an accuracy
 * near chance. When the input is not normalised, the dataset's own per-channel mean/std are
 * offered (and, with a classifier, the accuracy they give), so the fix is one click away.
 */
import type { PreprocessSpec, ResolvedPreprocess, TensorInfo } from '../../shared/contract/backbones';
import type { PreprocessCheck } from '../../shared/contract/backbonesService';
import { NmlabError } from '../../shared/errors';
import { loadDataset, splitRows } from '../datasets/store';
import { imageAt } from '../images/image';
import { batchDims, preprocessInto } from '../images/preprocess';
import { FeatureExtractor } from './extract';
import { inspectOnnx, type BackboneRef } from './onnx';

export interface CheckOptions {
  /** Feature output; the classifier is looked for among the others. */
  outputNode?: string;
  /** A classification output to score; default: the one output whose width is the class count. */
  classifierNode?: string;
  preprocess?: PreprocessSpec;
  /** Rows to sample (default 256), evenly spaced over the test split (all rows without one). */
  sample?: number;
  threads?: number;
}

/** Per-channel moments of a preprocessed batch (NCHW or NHWC), over every pixel of every sample. */
export function channelStats(data: Float32Array, p: ResolvedPreprocess, n: number): Array<{ mean: number; std: number; min: number; max: number }> {
  const [c, h, w] = p.inputSize;
  const hw = h * w;
  return Array.from({ length: c }, (_, ch) => {
    let sum = 0;
    let sq = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < hw; k++) {
        const v = p.layout === 'nchw' ? data[i * c * hw + ch * hw + k] : data[(i * hw + k) * c + ch];
        sum += v;
        sq += v * v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    const count = n * hw;
    const mean = sum / count;
    // Population std, as torchvision's Normalize statistics are usually computed.
    return { mean, std: Math.sqrt(Math.max(0, sq / count - mean * mean)), min, max };
  });
}

/** Fraction of rows whose argmax over `k` logits equals the label. */
export function top1(logits: Float32Array, k: number, labels: ArrayLike<number>): number {
  let right = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
    if (best === labels[i]) right++;
  }
  return labels.length ? right / labels.length : 0;
}

/** Evenly spaced rows of `rows`, at most `n`. */
function spread(rows: Int32Array, n: number): Int32Array {
  if (rows.length <= n) return rows;
  return Int32Array.from({ length: n }, (_, i) => rows[Math.floor((i * rows.length) / n)]);
}

const staticWidth = (o: TensorInfo): number | null => {
  const rest = o.shape.slice(1);
  return rest.length >= 1 && rest.every((d) => typeof d === 'number') ? (rest as number[]).reduce((a, b) => a * b, 1) : null;
};

/** Check `ref`'s preprocessing (with `opts.preprocess` overrides) on dataset `datasetId` of `projectDir`. */
export async function checkPreprocessing(projectDir: string, datasetId: string, ref: BackboneRef, opts: CheckOptions = {}): Promise<PreprocessCheck> {
  const ds = await loadDataset(projectDir, datasetId);
  if (!ds.images) throw new NmlabError('BAD_REQUEST', `dataset "${datasetId}" holds features, not images; pick an image dataset to check a backbone's preprocessing`);
  const rows = spread(ds.split ? splitRows(ds, 'test') : splitRows(ds, 'all'), opts.sample ?? 256);
  const k = ds.manifest.classes.length;
  const labels = Int32Array.from(rows, (r) => ds.labels[r]);

  const feature = await FeatureExtractor.open(ref, { outputNode: opts.outputNode, overrides: opts.preprocess ?? {}, threads: opts.threads });
  let classifier: FeatureExtractor | null = null;
  try {
    const p = feature.requirePreprocess();
    const per = p.inputSize[0] * p.inputSize[1] * p.inputSize[2];
    const input = new Float32Array(rows.length * per);
    rows.forEach((r, i) => preprocessInto(imageAt(ds.images!, r), p, input, i * per));
    const channels = channelStats(input, p, rows.length);

    // The classifier: named, or the one other output exactly as wide as the class count.
    const { outputs } = await inspectOnnx(ref.onnxFile);
    const candidates = opts.classifierNode
      ? outputs.filter((o) => o.name === opts.classifierNode)
      : outputs.filter((o) => o.name !== feature.output.name && staticWidth(o) === k);
    if (opts.classifierNode && candidates.length === 0) throw new NmlabError('BAD_REQUEST', `${ref.onnxFile} has no output "${opts.classifierNode}"; its outputs are ${outputs.map((o) => `"${o.name}"`).join(', ')}`);
    let scored: PreprocessCheck['classifier'] = null;
    const score = async (batch: Float32Array): Promise<number> => top1(await classifier!.runTensor(batch, batchDims(p, rows.length)), k, labels);
    if (candidates.length === 1) {
      classifier = await FeatureExtractor.open(ref, { outputNode: candidates[0].name, overrides: opts.preprocess ?? {}, threads: opts.threads });
      scored = { node: candidates[0].name, accuracy: await score(input), chance: 1 / k, rows: rows.length, numClasses: k };
    }

    const warnings: string[] = [];
    const fmt = (v: number) => v.toFixed(3);
    const offCentre = channels.some((s) => Math.abs(s.mean) > 0.3 || s.std < 0.4 || s.std > 2.5);
    let suggested: PreprocessCheck['suggested'] = null;
    if (channels.some((s) => s.max > 20)) {
      warnings.push(`the model input reaches ${fmt(Math.max(...channels.map((s) => s.max)))}: pixels look unscaled (0–255); models expect scale 1/255 then mean/std normalisation`);
    }
    if (offCentre) {
      // The dataset's own statistics in the [0, 1] scale: what the input would be normalised with.
      const raw = channels.map((s, i) => ({ mean: s.mean * p.std[i] + p.mean[i], std: s.std * p.std[i] }));
      const mean = raw.map((s) => Number(s.mean.toFixed(4)));
      const std = raw.map((s) => Number(Math.max(s.std, 1e-3).toFixed(4)));
      warnings.push(
        `the model input has per-channel mean ${channels.map((s) => fmt(s.mean)).join('/')} and std ${channels.map((s) => fmt(s.std)).join('/')}; ` +
          `models trained on normalised inputs expect about 0 and 1. If this one was, use mean ${mean.join(',')} and std ${std.join(',')} (this dataset's), or the values it was trained with`,
      );
      let accuracy: number | null = null;
      if (classifier) {
        const normed = Float32Array.from(input, (v, idx) => {
          const ch = p.layout === 'nchw' ? Math.floor((idx % per) / (p.inputSize[1] * p.inputSize[2])) : idx % p.inputSize[0];
          return (v * p.std[ch] + p.mean[ch] - mean[ch]) / std[ch];
        });
        accuracy = await score(normed);
      }
      suggested = { mean, std, accuracy };
    }
    // "Near chance": less than a quarter of the way from chance to perfect (12.6 % for 10 classes is).
    if (scored && scored.accuracy < scored.chance + (1 - scored.chance) / 4) {
      const better = suggested?.accuracy != null && suggested.accuracy > scored.accuracy + 0.1 ? `; with the suggested mean/std it scores ${(100 * suggested.accuracy).toFixed(1)} %` : '';
      warnings.push(
        `output "${scored.node}" classifies ${(100 * scored.accuracy).toFixed(1)} % of ${rows.length} samples right, near chance (${(100 / k).toFixed(1)} %): ` +
          `the preprocessing probably differs from the model's training (or its classes are not this dataset's)${better}`,
      );
    }
    return { dataset: datasetId, rows: rows.length, split: ds.split ? 'test' : 'all', preprocess: p, channels, classifier: scored, suggested, warnings };
  } finally {
    await feature.release();
    await classifier?.release();
  }
}
