/**
 * Spectrum summaries of the tuned features Z (DESIGN §4 metrics; paper Def. 5.1–5.2), with no
 * preprocessing, reported next to accuracy. Synchronous so that `evaluate()` can stay
 * synchronous (it is called from training callbacks); the singular values come from
 * src/core/spectrum's synchronous path, so Z and F spectra are computed the same way.
 */
import { singularValuesSync } from '../spectrum/spectrum';
import { spectrumStats, type SpectrumStats } from '../spectrum/stats';

export type ZSpectrum = SpectrumStats;

export function zSpectrum(z: Float32Array, rows: number, cols: number): ZSpectrum {
  return spectrumStats(singularValuesSync(z, rows, cols));
}
