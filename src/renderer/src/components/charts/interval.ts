/** Data of `IntervalChart`: means with their 95 % interval (lo/hi null where there is none). */
export interface IntervalPoint {
  x: number;
  y: number;
  lo: number | null;
  hi: number | null;
}

export interface IntervalSeries {
  label: string;
  points: IntervalPoint[];
  dashed?: boolean;
}

/** A point from an estimate ({mean, lo, hi}), scaled (100 for percent). */
export function intervalPoint(x: number, e: { mean: number; lo: number | null; hi: number | null }, scale = 1): IntervalPoint {
  return { x, y: scale * e.mean, lo: e.lo === null ? null : scale * e.lo, hi: e.hi === null ? null : scale * e.hi };
}
