/**
 * Spectrum summaries of features (DESIGN §4 metrics; paper Def. 5.1–5.2) for tuning results:
 * the headline one after the reference preprocessing (rows L2-normalised, then centred:
 * src/core/spectrum/preprocess.ts), the raw one beside it. Synchronous so that training
 * callbacks can call it; the singular values come from src/core/spectrum's synchronous path.
 */
import { referencePreprocess, type SpectrumPreprocess } from '../spectrum/preprocess';
import { singularValuesSync } from '../spectrum/spectrum';
import { spectrumStats, type SpectrumStats } from '../spectrum/stats';

export type ZSpectrum = SpectrumStats;

/** Singular values (descending) of a rows×cols matrix after `preprocess`. */
export function singularValuesOf(x: Float32Array, rows: number, cols: number, preprocess: SpectrumPreprocess): number[] {
  if (preprocess === 'none') return singularValuesSync(x, rows, cols);
  const out = new Float64Array(rows * cols);
  referencePreprocess(x, rows, cols, out);
  return singularValuesSync(out, rows, cols);
}

export function zSpectrum(z: Float32Array, rows: number, cols: number, preprocess: SpectrumPreprocess = 'reference'): ZSpectrum {
  return spectrumStats(singularValuesOf(z, rows, cols, preprocess));
}
