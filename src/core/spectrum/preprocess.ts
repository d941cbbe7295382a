/**
 * Feature preprocessing before the spectrum (DESIGN §4). Both options act on each row alone,
 * so they apply chunk by chunk while streaming a feature file.
 *
 * - `none`: the features as stored.
 * - `reference`: what the paper's reference code does before its SVD: each row L2-normalised,
 *   then each row centred by subtracting that row's own mean (not the column means). A row of
 *   zeros has no direction; it stays zero (the reference code would produce NaN there).
 */

/** Which preprocessing ran; recorded in every spectrum result. */
export type SpectrumPreprocess = 'none' | 'reference';

/** All preprocessing names, for CLI validation and schemas. */
export const SPECTRUM_PREPROCESS: readonly SpectrumPreprocess[] = ['none', 'reference'];

/**
 * Applies `reference` preprocessing to `rows` rows of width `d`, in float64, into `out`
 * (allocated when not given). Returns the number of all-zero rows met.
 */
export function referencePreprocess(data: Float32Array | Float64Array, rows: number, d: number, out: Float64Array): number {
  let zeroRows = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let ss = 0;
    for (let k = 0; k < d; k++) {
      const v = data[o + k];
      ss += v * v;
    }
    if (ss === 0) {
      zeroRows++;
      out.fill(0, o, o + d);
      continue;
    }
    const inv = 1 / Math.sqrt(ss);
    let mean = 0;
    for (let k = 0; k < d; k++) {
      const v = data[o + k] * inv;
      out[o + k] = v;
      mean += v;
    }
    mean /= d;
    for (let k = 0; k < d; k++) out[o + k] -= mean;
  }
  return zeroRows;
}
