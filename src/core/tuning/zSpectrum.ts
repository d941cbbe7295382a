/**
 * Spectrum summaries of the tuned features Z (DESIGN §4 metrics; paper Def. 5.1–5.2), with no
 * preprocessing, reported next to accuracy. Synchronous so that `evaluate()` can stay
 * synchronous (it is called from training callbacks): the singular values come from the
 * float64 eigenvalues of the smaller Gram matrix in JS, the summaries from src/core/spectrum.
 * For large sets, `spectrumOfMatrix` (src/core/spectrum) is the faster, ORT-backed route.
 */
import { gramCols, gramRows } from '../linalg/gram';
import { symmetricEigen } from '../linalg/symeig';
import { spectrumStats, type SpectrumStats } from '../spectrum/stats';

export type ZSpectrum = SpectrumStats;

export function zSpectrum(z: Float32Array, rows: number, cols: number): ZSpectrum {
  const n = Math.min(rows, cols);
  const g = rows <= cols ? gramRows(z, rows, cols) : gramCols(z, rows, cols);
  const { values } = symmetricEigen(g, n);
  return spectrumStats(Array.from(values, (v) => Math.sqrt(Math.max(v, 0))));
}
