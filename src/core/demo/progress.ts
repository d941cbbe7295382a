/**
 * Progress with ETA for a fixed list of stages (DESIGN §6: progress bars with ETA on every long
 * job). Each stage has a prior cost estimate in seconds; as stages finish, the estimates of the
 * stages still to come are scaled by how the finished ones of the same kind compared with their
 * estimates, so the overall ETA learns the machine's speed (and its load). Within a stage the ETA
 * comes from the observed rate of its own progress.
 *
 * Output is text lines for a terminal or a log file: on a TTY one line is rewritten in place,
 * elsewhere a line is written at most every `intervalMs` and at every stage end.
 */

export interface StagePlan {
  key: string;
  kind: string;
  label: string;
  /** Prior estimate of its wall time in seconds. */
  estimate: number;
  /** Already finished (reused from an earlier run): costs nothing. */
  done?: boolean;
}

export interface ProgressSink {
  write(text: string): void;
  isTTY: boolean;
}

/**
 * A structured snapshot of the study's progress (what the text lines say), for listeners that
 * are not terminals: the app's demo job turns it into job progress events.
 */
export interface DemoStatus {
  /** 1-based index of the stage this snapshot is about, of `stages`. */
  stage: number;
  stages: number;
  /** Stages finished (computed or reused) so far. */
  stagesDone: number;
  label: string;
  /** Fraction 0–1 of that stage. */
  fraction: number;
  detail: string;
  /** The stage has just finished. */
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

interface Active {
  plan: StagePlan;
  index: number;
  t0: number;
  fraction: number;
  detail: string;
}

export class ProgressReporter {
  private readonly stages: StagePlan[];
  private readonly ratio = new Map<string, { actual: number; estimate: number }>();
  private readonly active = new Map<string, Active>();
  private lastWrite = 0;
  private readonly t0 = performance.now();
  /** Told of every begin, update and end, unthrottled (the text output is throttled). */
  listener: ((s: DemoStatus) => void) | undefined;

  /**
   * `parallel[kind]`: how many stages of that kind run at once (e.g. pre-training in two
   * worker processes); the time left for that kind is divided by it.
   */
  constructor(
    stages: StagePlan[],
    private readonly sink: ProgressSink,
    private readonly intervalMs = 2000,
    private readonly parallel: Record<string, number> = {},
  ) {
    this.stages = stages.map((s) => ({ ...s }));
  }

  /** Seconds since the reporter was made. */
  elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }

  private scaled(plan: StagePlan): number {
    if (plan.done) return 0;
    const r = this.ratio.get(plan.kind);
    const all = [...this.ratio.values()].reduce((a, v) => ({ actual: a.actual + v.actual, estimate: a.estimate + v.estimate }), { actual: 0, estimate: 0 });
    // Same kind measured: its speed. Otherwise the overall speed, once enough work is behind
    // us for it to mean something (a 2-second stage says little about pre-training).
    const factor = r && r.estimate > 0 ? r.actual / r.estimate : all.estimate >= 20 ? all.actual / all.estimate : 1;
    return plan.estimate * factor;
  }

  /** Estimated wall seconds left: running stages from their own rate, the others from estimates. */
  private remaining(): number {
    const byKind = new Map<string, number>();
    const add = (kind: string, secs: number) => byKind.set(kind, (byKind.get(kind) ?? 0) + secs);
    for (const s of this.stages) {
      const a = this.active.get(s.key);
      if (a) {
        const secs = (performance.now() - a.t0) / 1000;
        add(s.kind, a.fraction > 0.02 ? (secs / a.fraction) * (1 - a.fraction) : Math.max(0, this.scaled(s) - secs));
      } else add(s.kind, this.scaled(s));
    }
    let total = 0;
    for (const [kind, secs] of byKind) total += secs / Math.max(1, this.parallel[kind] ?? 1);
    return total;
  }

  begin(key: string): void {
    const index = this.stages.findIndex((s) => s.key === key);
    if (index < 0) return;
    this.active.set(key, { plan: this.stages[index], index, t0: performance.now(), fraction: 0, detail: '' });
    this.print(key, true);
  }

  /** Fraction 0–1 of stage `key` (the only running stage when omitted), and what it is doing. */
  update(fraction: number, detail = '', key?: string): void {
    const k = key ?? (this.active.size === 1 ? [...this.active.keys()][0] : undefined);
    const a = k === undefined ? undefined : this.active.get(k);
    if (!a || k === undefined) return;
    a.fraction = Math.min(1, Math.max(0, fraction));
    a.detail = detail;
    this.print(k, false);
  }

  /** Stage `key` (the only running stage when omitted) finished; `reused` = nothing was computed. */
  end(reused = false, key?: string): void {
    const k = key ?? (this.active.size === 1 ? [...this.active.keys()][0] : undefined);
    const a = k === undefined ? undefined : this.active.get(k);
    if (!a || k === undefined) return;
    const secs = (performance.now() - a.t0) / 1000;
    if (!reused) {
      const r = this.ratio.get(a.plan.kind) ?? { actual: 0, estimate: 0 };
      this.ratio.set(a.plan.kind, { actual: r.actual + secs, estimate: r.estimate + a.plan.estimate });
    }
    a.plan.done = true;
    this.active.delete(k);
    this.notify(a, true);
    const line = `[${a.index + 1}/${this.stages.length}] ${a.plan.label}: ${reused ? 'done earlier, reused' : `done in ${secs.toFixed(1)} s`}` +
      `  (elapsed ${formatDuration(this.elapsed())}, ETA ${formatDuration(this.remaining())})`;
    this.emit(line, true);
  }

  private notify(a: Active, ended: boolean): void {
    if (!this.listener) return;
    this.listener({
      stage: a.index + 1,
      stages: this.stages.length,
      stagesDone: this.stages.filter((s) => s.done).length,
      label: a.plan.label,
      fraction: ended ? 1 : a.fraction,
      detail: a.detail,
      ended,
      elapsedSeconds: this.elapsed(),
      etaSeconds: this.remaining(),
    });
  }

  private print(key: string, force: boolean): void {
    const a = this.active.get(key);
    if (!a) return;
    this.notify(a, false);
    const now = performance.now();
    if (!force && !this.sink.isTTY && now - this.lastWrite < this.intervalMs) return;
    if (!force && this.sink.isTTY && now - this.lastWrite < 100) return;
    const secs = (now - a.t0) / 1000;
    const stageLeft = a.fraction > 0.02 ? (secs / a.fraction) * (1 - a.fraction) : Math.max(0, this.scaled(a.plan) - secs);
    const others = [...this.active.values()].filter((o) => o !== a).map((o) => `${o.plan.label} ${Math.round(o.fraction * 100)}%`);
    const pct = `${Math.round(a.fraction * 100)}%`.padStart(4);
    const line =
      `[${a.index + 1}/${this.stages.length}] ${a.plan.label} ${pct}${a.detail ? ` ${a.detail}` : ''}  stage ETA ${formatDuration(stageLeft)}, ` +
      `total ETA ${formatDuration(this.remaining())}${others.length ? `  (also running: ${others.join(', ')})` : ''}`;
    this.emit(line, false);
  }

  private emit(line: string, final: boolean): void {
    this.lastWrite = performance.now();
    if (this.sink.isTTY) this.sink.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else this.sink.write(`${line}\n`);
  }
}
