/** One bar of `BarChart`. */
export interface Bar {
  label: string;
  value: number;
  /** Drawn in the accent colour (e.g. the latest run); others are muted. */
  highlight?: boolean;
}
