/**
 * How an error bar meets a bounded axis, shared by the app's and the report's charts
 * (renderer/components/charts/errorBars.ts) and the demo's standalone SVG charts
 * (core/demo/svg.ts): the axis stops at the quantity's bounds (accuracy: 0–100 %), and a bar
 * that runs past the axis is drawn to the frame and ends in an arrowhead, not a cap. An axis
 * widened to hold a two-replicate interval of −50…150 % would flatten every line.
 */

/**
 * The part of interval `iv` an axis from `min` to `max` shows, and whether each end runs past
 * it; null when none of it is on the axis.
 */
export function whisker(iv: [number, number], min: number, max: number): { lo: number; hi: number; pastLo: boolean; pastHi: boolean } | null {
  const lo = Math.max(iv[0], min);
  const hi = Math.min(iv[1], max);
  if (!(hi >= lo)) return null;
  return { lo, hi, pastLo: iv[0] < min, pastHi: iv[1] > max };
}
