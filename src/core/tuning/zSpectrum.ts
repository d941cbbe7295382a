/**
 * SVE and LSVR of the tuned features Z (DESIGN §4 metrics; paper Def. 5.1–5.2), with no
 * preprocessing, reported next to accuracy.
 *
 * TODO(spectrum): delegate to src/core/spectrum once it lands; until then this computes the
 * singular values the same way (float64 eigenvalues of the smaller Gram matrix).
 */
import { gramCols, gramRows } from '../linalg/gram';
import { symmetricEigen } from '../linalg/symeig';

export interface ZSpectrum {
  sve: number;
  lsvr: number;
}

export function zSpectrum(z: Float32Array, rows: number, cols: number): ZSpectrum {
  const n = Math.min(rows, cols);
  const g = rows <= cols ? gramRows(z, rows, cols) : gramCols(z, rows, cols);
  const { values } = symmetricEigen(g, n);
  let sum = 0;
  const sigma = Array.from(values, (v) => Math.sqrt(Math.max(v, 0)));
  for (const s of sigma) sum += s;
  if (!(sum > 0)) return { sve: 0, lsvr: 0 };
  let sve = 0;
  for (const s of sigma) if (s > 0) sve -= (s / sum) * Math.log(s / sum);
  return { sve, lsvr: -Math.log(sigma[0] / sum) };
}
