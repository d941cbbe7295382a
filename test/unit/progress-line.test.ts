/** `nmlab run`'s progress line on stderr: when it prints, and the timer that keeps its ETA fresh. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ETA_REFRESH_MS, progressPrinter, queueSnapshots } from '../../src/cli/commands/run';
import type { ExperimentDetail, ExperimentEvent } from '../../src/shared/contract/experiments';

type Counts = ExperimentDetail['summary']['counts'];
const counts = (c: Partial<Counts>): Counts => ({ pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, interrupted: 0, ...c });
const summary = (c: Partial<Counts>, etaSeconds: number | null): ExperimentDetail['summary'] => ({ id: 's1', name: 's', layout: 'custom', createdAt: '', total: 4, counts: counts(c), active: true, etaSeconds });
const queue = (c: Partial<Counts>, etaSeconds: number | null): ExperimentEvent => ({ type: 'queue', projectDir: '/p', experimentId: 's1', summary: summary(c, etaSeconds), jobs: [] });

afterEach(() => vi.useRealTimers());

describe('progressPrinter', () => {
  it('prints a changed count at once, a changed ETA alone at most every 30 s, never the same line twice', () => {
    expect(ETA_REFRESH_MS).toBe(30_000);
    let t = 0;
    const lines: string[] = [];
    const print = progressPrinter((s) => lines.push(s), () => t);
    print(queue({ running: 1, pending: 3 }, 120));
    t = 10_000;
    print(queue({ running: 1, pending: 3 }, 110)); // ETA only, 10 s later: held back
    t = 29_999;
    print(queue({ running: 1, pending: 3 }, 90.4)); // still under 30 s
    t = 30_000;
    print(queue({ running: 1, pending: 3 }, 90.4)); // 30 s since the last line: printed
    t = 31_000;
    print(queue({ succeeded: 1, running: 1, pending: 2 }, 89)); // a job ended: at once
    t = 70_000;
    print(queue({ succeeded: 1, running: 1, pending: 2 }, 89)); // same text: never again
    print({ type: 'live', projectDir: '/p', experimentId: 's1', key: 'k', runId: null, progress: null, points: [] });
    expect(lines).toEqual([
      's1: 0/4 done, 1 running, 3 pending, ETA 120 s\n',
      's1: 0/4 done, 1 running, 3 pending, ETA 90 s\n',
      's1: 1/4 done, 1 running, 2 pending, ETA 89 s\n',
    ]);
  });
});

describe('queueSnapshots', () => {
  it('sends the study as the queue sees it every 30 s, and nothing once stopped', async () => {
    vi.useFakeTimers();
    const etas = [100, 70, 40];
    let calls = 0;
    // Only the summary and jobs of the study are read.
    const ex = { get: async () => ({ summary: summary({ running: 1 }, etas[calls++]), jobs: [] }) as unknown as ExperimentDetail };
    const got: Array<number | null> = [];
    const stop = queueSnapshots(ex, '/p', 's1', (e) => got.push(e.type === 'queue' ? e.summary.etaSeconds : null));
    await vi.advanceTimersByTimeAsync(29_999);
    expect(got).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(got).toEqual([100]);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(got).toEqual([100, 70]);
    stop();
    await vi.advanceTimersByTimeAsync(90_000);
    expect(got).toEqual([100, 70]);
    expect(calls).toBe(2);
  });
});
