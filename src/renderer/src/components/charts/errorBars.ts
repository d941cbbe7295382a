/**
 * A Chart.js plugin that draws error bars (vertical whiskers with caps) for line and bar
 * charts: each dataset may carry `intervals`, one [lo, hi] (in data units) or null per data
 * point, drawn at that point's element. An end past the axis (an accuracy interval of two
 * replicates can reach −50 % or 150 %) is drawn to the frame with an arrowhead instead of a
 * cap, so the bar is visibly longer than the plot rather than silently cut; the tooltip gives
 * its numbers. Used by the app's charts and the report's.
 */
import type { Chart, ChartType, Plugin } from 'chart.js';
import { whisker } from '../../../../shared/errorBar';

export type Interval = [number, number] | null;

/** The intervals of a dataset, when it has them. */
function intervalsOf(ds: object): Interval[] | undefined {
  return (ds as { intervals?: Interval[] }).intervals;
}

export const errorBarsPlugin: Plugin<ChartType> = {
  id: 'nmlabErrorBars',
  afterDatasetsDraw(c: Chart) {
    const { ctx, chartArea } = c;
    const y = c.scales.y;
    if (!y) return;
    c.data.datasets.forEach((ds, i) => {
      const intervals = intervalsOf(ds);
      if (!intervals || !c.isDatasetVisible(i)) return;
      const meta = c.getDatasetMeta(i);
      ctx.save();
      // Never draw over the axes or the legend.
      ctx.beginPath();
      ctx.rect(chartArea.left, chartArea.top, chartArea.right - chartArea.left, chartArea.bottom - chartArea.top);
      ctx.clip();
      const colour = Array.isArray(ds.borderColor) ? String(ds.borderColor[0]) : String(ds.borderColor ?? '#000');
      ctx.strokeStyle = meta.type === 'bar' ? '#000' : colour;
      ctx.globalAlpha = meta.type === 'bar' ? 0.75 : 1;
      ctx.lineWidth = 1.2;
      meta.data.forEach((el, j) => {
        const iv = intervals[j];
        if (!iv || !(iv[1] > iv[0])) return;
        const x = el.x;
        const w = whisker(iv, y.min, y.max);
        if (!w) return;
        const lo = y.getPixelForValue(w.lo);
        const hi = y.getPixelForValue(w.hi);
        const cap = meta.type === 'bar' ? 5 : 3.5;
        ctx.beginPath();
        ctx.moveTo(x, lo);
        ctx.lineTo(x, hi);
        // A cap where the interval ends; an arrowhead pointing on where it runs past the axis.
        for (const [py, past, dir] of [[lo, w.pastLo, 1], [hi, w.pastHi, -1]] as const) {
          if (past) {
            ctx.moveTo(x - cap, py - dir * cap * 1.6);
            ctx.lineTo(x, py);
            ctx.lineTo(x + cap, py - dir * cap * 1.6);
          } else {
            ctx.moveTo(x - cap, py);
            ctx.lineTo(x + cap, py);
          }
        }
        ctx.stroke();
      });
      ctx.restore();
    });
  },
};

/** The smallest and largest value the chart must show: means and both ends of every interval. */
export function valueRange(values: Array<number | null>, intervals: Interval[]): [number, number] | null {
  const all = [...values, ...intervals.flatMap((iv) => (iv ? iv : []))].filter((v): v is number => v !== null && Number.isFinite(v));
  return all.length ? [Math.min(...all), Math.max(...all)] : null;
}

/** Chart.js y-scale limits: hard (min/max) or soft (suggestedMin/Max, widened to nice ticks). */
export interface YLimits {
  min?: number;
  max?: number;
  suggestedMin?: number;
  suggestedMax?: number;
}

/**
 * The y-scale limits for means and their error bars: the range of `valueRange`, padded by
 * `padFraction` of its span, and stopped at `bounds` (e.g. [0, 100] for accuracy in percent:
 * an axis to 300 % would flatten every line to read a whisker). A bar that reaches past a
 * bound is drawn to it with an arrowhead (errorBarsPlugin), never widened into nonsense values.
 */
export function yLimits(values: Array<number | null>, intervals: Interval[], bounds?: [number, number], padFraction = 0.08): YLimits {
  const r = valueRange(values, intervals);
  if (!r) return {};
  const pad = (r[1] - r[0]) * padFraction || Math.abs(r[0]) * 0.02 || 1;
  const [lo, hi] = bounds ?? [-Infinity, Infinity];
  const bottom = r[0] - pad;
  const top = r[1] + pad;
  return { ...(bottom <= lo ? { min: lo } : { suggestedMin: bottom }), ...(top >= hi ? { max: hi } : { suggestedMax: top }) };
}
