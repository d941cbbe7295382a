/**
 * A small standalone-SVG line chart writer (DESIGN §6: comparison charts of accuracy, SVE and
 * LSVR against γ), so results can be drawn without a browser. One chart: numeric x, several
 * named series of (x, y) points with optional error bars [lo, hi], axes with "nice" ticks
 * covering the points and both ends of every bar up to the quantity's bounds (a bar past them
 * ends in an arrowhead at the frame, as in the app's charts: shared/errorBar.ts), a legend,
 * markers on the points.
 * The output is a complete SVG 1.1 document with no external references.
 */
import { whisker } from '../../shared/errorBar';

export interface ChartSeries {
  name: string;
  /** Points; `lo`/`hi` (both, lo < hi) draw an error bar from lo to hi at x. */
  points: Array<{ x: number; y: number; lo?: number; hi?: number }>;
  /** Dashed line (e.g. backbone features next to tuned ones). */
  dashed?: boolean;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** Tick values of the x axis (default: nice ticks over the data). */
  xTicks?: number[];
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
  /** Values the y axis never goes beyond (accuracy in percent: [0, 100]). */
  yBounds?: [number, number];
  width?: number;
  height?: number;
}

/** Colour-blind-safe palette (Okabe & Ito, 2008). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

/** XML-escape text content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/**
 * About `count` round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 × 10^k), and the
 * range they span. A degenerate range is widened around its value.
 */
export function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; min: number; max: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { ticks: [0, 1], min: 0, max: 1 };
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi - lo < 1e-12) {
    const pad = Math.abs(lo) > 1e-12 ? Math.abs(lo) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const min = Number((Math.floor(lo / step + 1e-9) * step).toPrecision(12));
  const max = Number((Math.ceil(hi / step - 1e-9) * step).toPrecision(12));
  const ticks: number[] = [];
  for (let v = min; v <= max + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
  return { ticks, min, max };
}

/** A point's error bar [lo, hi], when it has one with finite ends, lo < hi. */
function barOf(p: ChartSeries['points'][number]): [number, number] | null {
  const { lo, hi } = p;
  return lo !== undefined && hi !== undefined && Number.isFinite(lo) && Number.isFinite(hi) && hi > lo ? [lo, hi] : null;
}

/**
 * The y values the axis must show: every point's y, and both ends of every error bar widened
 * by 3 % of the data's span, so that no bar ends on (or beyond) the plot's frame; never past
 * `bounds`.
 */
export function yExtent(series: ChartSeries[], bounds: [number, number] = [-Infinity, Infinity]): { lo: number; hi: number } | null {
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const bars = pts.map(barOf).filter((b): b is [number, number] => b !== null);
  const all = [...pts.map((p) => p.y), ...bars.flat()];
  if (!all.length) return null;
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  const pad = 0.03 * (hi - lo);
  if (bars.some((b) => b[0] === lo)) lo -= pad;
  if (bars.some((b) => b[1] === hi)) hi += pad;
  return { lo: Math.max(lo, bounds[0]), hi: Math.min(hi, bounds[1]) };
}

function fmt(v: number): string {
  return Number(v.toFixed(2)).toString();
}

/** Render a line chart as a standalone SVG document. */
export function lineChartSvg(spec: LineChartSpec): string {
  const W = spec.width ?? 640;
  const H = spec.height ?? 400;
  const m = { left: 70, right: 170, top: 44, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xs = spec.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).map((p) => p.x);
  const xt = spec.xTicks ? { ticks: spec.xTicks, min: Math.min(...spec.xTicks), max: Math.max(...spec.xTicks) } : niceTicks(Math.min(...xs), Math.max(...xs));
  const bounds = spec.yBounds ?? [-Infinity, Infinity];
  const ye = yExtent(spec.series, bounds);
  const nice = niceTicks(ye ? ye.lo : 0, ye ? ye.hi : 1);
  const yt = { min: Math.max(nice.min, bounds[0]), max: Math.min(nice.max, bounds[1]), ticks: nice.ticks.filter((t) => t >= bounds[0] && t <= bounds[1]) };
  const xSpan = xt.max - xt.min || 1;
  const ySpan = yt.max - yt.min || 1;
  const X = (x: number) => m.left + ((x - xt.min) / xSpan) * pw;
  const Y = (y: number) => m.top + ph - ((y - yt.min) / ySpan) * ph;
  const xf = spec.xFormat ?? ((v: number) => String(v));
  const yf = spec.yFormat ?? ((v: number) => String(v));

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<title>${escapeXml(spec.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);
  // Grid and ticks.
  for (const t of yt.ticks) {
    const y = fmt(Y(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e0e0e0" stroke-width="1"/>`);
    out.push(`<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(yf(t))}</text>`);
  }
  for (const t of xt.ticks) {
    const x = fmt(X(t));
    out.push(`<line x1="${x}" y1="${m.top + ph}" x2="${x}" y2="${m.top + ph + 5}" stroke="#333333" stroke-width="1"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 20}" text-anchor="middle">${escapeXml(xf(t))}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333333" stroke-width="1"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  out.push(`<text x="18" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${m.top + ph / 2})">${escapeXml(spec.yLabel)}</text>`);
  // Series.
  let anyPast = false;
  spec.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const good = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (good.length > 1) {
      const d = good.map((p, k) => `${k ? 'L' : 'M'}${fmt(X(p.x))},${fmt(Y(p.y))}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`);
    }
    for (const p of good) {
      const bar = barOf(p);
      const w = bar && whisker(bar, yt.min, yt.max);
      if (!bar || !w) continue;
      anyPast ||= w.pastLo || w.pastHi;
      const x = X(p.x);
      const [lo, hi] = [Y(w.lo), Y(w.hi)];
      // A cap where the bar ends; an arrowhead pointing on where it runs past the axis.
      const end = (y: number, past: boolean, dir: number): string => (past ? `M${fmt(x - 4)},${fmt(y + dir * 6.4)} L${fmt(x)},${fmt(y)} L${fmt(x + 4)},${fmt(y + dir * 6.4)}` : `M${fmt(x - 4)},${fmt(y)} L${fmt(x + 4)},${fmt(y)}`);
      const title = `<title>${escapeXml(`${s.name}: ${xf(p.x)} → [${yf(bar[0])}, ${yf(bar[1])}]`)}</title>`;
      out.push(`<path class="error-bar" d="M${fmt(x)},${fmt(lo)} L${fmt(x)},${fmt(hi)} ${end(lo, w.pastLo, -1)} ${end(hi, w.pastHi, 1)}" stroke="${colour}" stroke-width="1.2" fill="none">${title}</path>`);
    }
    for (const p of good) out.push(`<circle cx="${fmt(X(p.x))}" cy="${fmt(Y(p.y))}" r="3.5" fill="${colour}"><title>${escapeXml(`${s.name}: ${xf(p.x)} → ${yf(p.y)}`)}</title></circle>`);
    const ly = m.top + 10 + i * 20;
    const lx = m.left + pw + 16;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`);
    out.push(`<circle cx="${lx + 12}" cy="${ly}" r="3.5" fill="${colour}"/>`);
    out.push(`<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  if (anyPast) out.push(`<text x="${W - 8}" y="${H - 14}" text-anchor="end" font-size="10" fill="#555555">arrowhead: the bar runs past the axis</text>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
