/**
 * Coalescing of live updates per stream (DESIGN §2: a fast job must not flood the UI). Each
 * stream (one job) sends at most one update per `intervalMs`; between sends, progress is
 * replaced by the latest and metric points are collected, so nothing is lost and the last
 * state is always delivered (at the end of the window, or at once on `flush`).
 */
import type { LiveProgress, MetricPoint } from '../../shared/contract/experiments';

export interface LiveBatch {
  progress: LiveProgress | null;
  points: MetricPoint[];
}

interface Stream {
  progress: LiveProgress | null;
  points: MetricPoint[];
  dirty: boolean;
  lastSent: number;
  timer: NodeJS.Timeout | null;
}

export class LiveThrottle {
  private readonly streams = new Map<string, Stream>();

  constructor(
    private readonly emit: (key: string, batch: LiveBatch) => void,
    private readonly intervalMs = 100,
    /** Points kept per series between two sends; older ones are thinned (every other dropped). */
    private readonly maxPointsPerBatch = 500,
  ) {}

  private stream(key: string): Stream {
    let s = this.streams.get(key);
    if (!s) this.streams.set(key, (s = { progress: null, points: [], dirty: false, lastSent: 0, timer: null }));
    return s;
  }

  progress(key: string, p: LiveProgress): void {
    const s = this.stream(key);
    s.progress = p;
    this.touch(key, s);
  }

  point(key: string, p: MetricPoint): void {
    const s = this.stream(key);
    s.points.push(p);
    if (s.points.length > this.maxPointsPerBatch) s.points = s.points.filter((_, i) => i % 2 === 1 || i === s.points.length - 1);
    this.touch(key, s);
  }

  /** Something changed for `key` (no payload: the emitter reads the current state). */
  mark(key: string): void {
    this.touch(key, this.stream(key));
  }

  private touch(key: string, s: Stream): void {
    s.dirty = true;
    const wait = s.lastSent + this.intervalMs - Date.now();
    if (wait <= 0) this.flush(key);
    else s.timer ??= setTimeout(() => this.flush(key), wait);
  }

  /** Send what is pending for `key` now. */
  flush(key: string): void {
    const s = this.streams.get(key);
    if (!s) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    if (!s.dirty) return;
    s.dirty = false;
    s.lastSent = Date.now();
    const batch = { progress: s.progress, points: s.points };
    s.points = [];
    this.emit(key, batch);
  }

  /** Flush and forget a finished stream. */
  end(key: string): void {
    this.flush(key);
    this.streams.delete(key);
  }

  dispose(): void {
    for (const s of this.streams.values()) if (s.timer) clearTimeout(s.timer);
    this.streams.clear();
  }
}
