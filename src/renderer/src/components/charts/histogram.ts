/** One stacked part of every bar of `ClassHistogram` (e.g. the train rows of each class). */
export interface HistogramGroup {
  label: string;
  counts: number[];
}
