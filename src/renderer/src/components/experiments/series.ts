/** One line of `LineChart`. */
export interface Series {
  label: string;
  points: Array<{ x: number; y: number }>;
  color?: string;
  dashed?: boolean;
}

/** Every k-th point so that at most `max` remain (the last is kept): bounds the cost of drawing. */
export function thinPoints<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const k = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % k === 0);
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]);
  return out;
}

/** Loss terms in a fixed order and with readable names. */
export const LOSS_TERMS: Array<{ key: string; label: string }> = [
  { key: 'total', label: 'total' },
  { key: 'ce', label: 'CE' },
  { key: 'mse', label: 'MSE' },
  { key: 'cov', label: 'COV' },
  { key: 'svd', label: 'SVD' },
];
