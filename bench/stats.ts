/** Summaries the benchmarks share. */

/** The median; of an even count, the upper of the middle two (a value that was measured). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
