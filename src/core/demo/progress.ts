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

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

export class ProgressReporter {
  private readonly stages: StagePlan[];
  private readonly ratio = new Map<string, { actual: number; estimate: number }>();
  private current: { plan: StagePlan; index: number; t0: number; fraction: number; detail: string } | null = null;
  private lastWrite = 0;
  private readonly t0 = performance.now();
  private finished = 0;

  constructor(
    stages: StagePlan[],
    private readonly sink: ProgressSink,
    private readonly intervalMs = 2000,
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

  /** Estimated seconds left for everything after the current stage. */
  private remainingAfterCurrent(): number {
    const idx = this.current?.index ?? -1;
    return this.stages.slice(idx + 1).reduce((a, s) => a + this.scaled(s), 0);
  }

  begin(key: string): void {
    const index = this.stages.findIndex((s) => s.key === key);
    if (index < 0) return;
    this.current = { plan: this.stages[index], index, t0: performance.now(), fraction: 0, detail: '' };
    this.print(true);
  }

  /** Fraction 0–1 of the current stage, and what it is doing. */
  update(fraction: number, detail = ''): void {
    if (!this.current) return;
    this.current.fraction = Math.min(1, Math.max(0, fraction));
    this.current.detail = detail;
    this.print(false);
  }

  /** The current stage finished; `reused` = nothing was computed. */
  end(reused = false): void {
    const c = this.current;
    if (!c) return;
    const secs = (performance.now() - c.t0) / 1000;
    if (!reused) {
      const r = this.ratio.get(c.plan.kind) ?? { actual: 0, estimate: 0 };
      this.ratio.set(c.plan.kind, { actual: r.actual + secs, estimate: r.estimate + c.plan.estimate });
    }
    c.plan.done = true;
    this.finished++;
    const line = `[${c.index + 1}/${this.stages.length}] ${c.plan.label}: ${reused ? 'done earlier, reused' : `done in ${secs.toFixed(1)} s`}` +
      `  (elapsed ${formatDuration(this.elapsed())}, ETA ${formatDuration(this.remainingAfterCurrent())})`;
    this.emit(line, true);
    this.current = null;
  }

  private print(force: boolean): void {
    const c = this.current;
    if (!c) return;
    const now = performance.now();
    if (!force && !this.sink.isTTY && now - this.lastWrite < this.intervalMs) return;
    if (!force && this.sink.isTTY && now - this.lastWrite < 100) return;
    const secs = (now - c.t0) / 1000;
    const stageLeft = c.fraction > 0.02 ? (secs / c.fraction) * (1 - c.fraction) : Math.max(0, this.scaled(c.plan) - secs);
    const total = stageLeft + this.remainingAfterCurrent();
    const pct = `${Math.round(c.fraction * 100)}%`.padStart(4);
    const line = `[${c.index + 1}/${this.stages.length}] ${c.plan.label} ${pct}${c.detail ? ` ${c.detail}` : ''}  stage ETA ${formatDuration(stageLeft)}, total ETA ${formatDuration(total)}`;
    this.emit(line, false);
  }

  private emit(line: string, final: boolean): void {
    this.lastWrite = performance.now();
    if (this.sink.isTTY) this.sink.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else this.sink.write(`${line}\n`);
  }
}
