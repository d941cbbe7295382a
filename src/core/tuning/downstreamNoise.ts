/**
 * Downstream label noise η on the tuning set (paper §7.4), drawn with src/core/noise before
 * training; semantics in `DownstreamNoise` (src/shared/contract/tuning.ts).
 */
import type { DownstreamNoise, DownstreamNoiseResult } from '../../shared/contract/tuning';
import { symmetricNoise } from '../noise';

/** The noisy labels and what the draw did; η = 0 returns the labels unchanged. */
export function downstreamLabels(labels: Int32Array, noise: DownstreamNoise, fitSeed: number, numClasses: number): { labels: Int32Array; result: DownstreamNoiseResult } {
  const seed = noise.seed ?? fitSeed;
  const base = { ...noise, seed, rows: labels.length };
  if (noise.eta === 0) return { labels, result: { ...base, flipped: 0, realisedFlipRate: 0, transitionCounts: null } };
  const r = symmetricNoise(labels, { ratio: noise.eta, seed, numClasses, anyClass: noise.semantics === 'any-class' });
  const flipped = r.flippedIndices.length;
  return { labels: r.labels, result: { ...base, flipped, realisedFlipRate: labels.length ? flipped / labels.length : 0, transitionCounts: r.transitionCounts } };
}
