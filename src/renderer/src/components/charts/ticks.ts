/** Tick text shared by the app's charts and the report's (pure: no DOM, unit-tested). */

const SUPERSCRIPT: Record<string, string> = { '-': '⁻', '0': '⁰', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵', '6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹' };

/**
 * A log-axis tick: decades as 1, 10, 100 or 10⁻³ (from 10⁻³ down and 10⁴ up); 2× and 5× a decade
 * labelled only when the axis spans at most two decades; everything else blank. Chart.js's
 * default prints every minor tick ("0.0002 0.0003 …"), which is unreadable.
 */
export function logTick(v: number, decades: number): string {
  if (!(v > 0)) return '';
  const e = Math.floor(Math.log10(v) + 1e-9);
  const m = v / 10 ** e;
  const isDecade = Math.abs(m - 1) < 1e-6;
  if (!isDecade && !(decades <= 2 && (Math.abs(m - 2) < 1e-6 || Math.abs(m - 5) < 1e-6))) return '';
  if (e >= -2 && e <= 3) return String(Number(v.toPrecision(2)));
  const exp = String(e)
    .split('')
    .map((c) => SUPERSCRIPT[c] ?? c)
    .join('');
  return isDecade ? `10${exp}` : `${Math.round(m)}·10${exp}`;
}
