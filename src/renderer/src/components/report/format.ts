/** Shared look of the report template: fonts, colours and axis labels. */

/**
 * Fonts Chromium embeds in its PDFs (subset TrueType); DejaVu/Liberation on Linux, Arial or
 * Helvetica elsewhere. The same list is used by the page and the charts.
 */
export const REPORT_FONT = "'DejaVu Sans', 'Liberation Sans', Arial, Helvetica, sans-serif";

/** Okabe–Ito colours: distinguishable with colour-blindness and in greyscale print. */
export const CHART_COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#8C6D1F'];

/** Axis tick text: γ as a percent, indices whole, other values without trailing noise. */
export function axisTick(v: number, kind: 'percent' | 'integer' | 'number'): string {
  if (kind === 'percent') return `${Math.round(v * 1000) / 10}%`;
  if (kind === 'integer') return Number.isInteger(v) ? String(v) : '';
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(4)));
}
