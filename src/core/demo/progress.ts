/**
 * Progress of the demo study for terminals and for the app's demo job: text lines go to a
 * {@link ProgressSink}; {@link DemoStatus} is the same news, structured. The ETA is the queue's
 * (src/core/experiments/service.ts: measured cost per stage, prior costs until one finished).
 */

export interface ProgressSink {
  write(text: string): void;
  isTTY: boolean;
}

/** Where the demo study stands, on every change of its queue. */
export interface DemoStatus {
  /** Jobs finished (computed now or earlier) of `total`. */
  done: number;
  total: number;
  /** Jobs found finished when this run started. */
  reused: number;
  /** The job this change is about (started or finished), or '' when none changed state. */
  label: string;
  /** A job has just finished. */
  ended: boolean;
  elapsedSeconds: number;
  /** Estimated wall seconds left for the whole study. */
  etaSeconds: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
