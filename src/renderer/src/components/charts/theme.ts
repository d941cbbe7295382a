/**
 * The look every app chart shares: colours from the theme's CSS variables (so light and dark
 * mode each get readable text and grid lines) and one palette.
 */

/** Okabe–Ito-like palette, distinguishable with colour-blindness (the report uses the same hues). */
export const PALETTE = ['#2f64c9', '#c4512b', '#1d8a5a', '#8b46b8', '#b38a12', '#2a8fa8', '#b33a6b', '#5d6b7a'];

export interface ChartTheme {
  text: string;
  muted: string;
  /** Grid lines: the theme's border colour (dark in dark mode, light in light mode). */
  grid: string;
  accent: string;
  faint: string;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export function chartTheme(): ChartTheme {
  return {
    text: cssVar('--text', '#1b2230'),
    muted: cssVar('--muted', '#5f6b7a'),
    grid: cssVar('--border', '#dfe2e8'),
    accent: cssVar('--accent', '#2f64c9'),
    faint: cssVar('--faint', '#8a94a3'),
  };
}
