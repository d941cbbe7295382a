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

/** Loss terms in a fixed order, with readable names and what they measure (eq. 4–7). */
export const LOSS_TERMS: Array<{ key: string; label: string; meaning: string }> = [
  { key: 'total', label: 'total', meaning: 'the weighted sum' },
  { key: 'ce', label: 'CE', meaning: 'cross-entropy' },
  { key: 'mse', label: 'MSE', meaning: '‖h(f) − f‖², ≥ 0' },
  { key: 'cov', label: 'COV', meaning: 'off-diagonal covariance², ≥ 0' },
  { key: 'svd', label: 'SVD', meaning: '−Σ top-k σᵢ / (k·Σσ), ≤ 0 by definition' },
];

/** One chart of loss curves: total and CE share one (same unit and scale); each regulariser has its own axis. */
export interface LossPanel {
  key: string;
  title: string;
  yLabel: string;
  series: Series[];
}

/**
 * Loss points (`values` per step) as panels: "total and CE" together, then MSE, COV and SVD each
 * on its own y axis — their scales differ by orders of magnitude and L_SVD is negative by
 * definition, so one shared axis hid them and showed a "negative loss".
 */
export function lossPanels(points: Array<{ step: number; values: Record<string, number> }>): LossPanel[] {
  const present = LOSS_TERMS.filter((t) => points.some((p) => t.key in p.values));
  const series = (keys: string[]) =>
    present.filter((t) => keys.includes(t.key)).map((t) => ({ label: t.label, points: points.filter((p) => t.key in p.values).map((p) => ({ x: p.step, y: p.values[t.key] })) }));
  const panels: LossPanel[] = [];
  const main = series(['total', 'ce']);
  if (main.length) panels.push({ key: 'main', title: main.length > 1 ? 'Total and cross-entropy' : main[0].label, yLabel: 'loss (nats)', series: main });
  for (const t of present.filter((x) => x.key !== 'total' && x.key !== 'ce')) panels.push({ key: t.key, title: `L_${t.label}: ${t.meaning}`, yLabel: `L_${t.label}`, series: series([t.key]) });
  return panels;
}
