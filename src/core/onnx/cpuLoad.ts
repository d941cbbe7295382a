/**
 * How much CPU other processes use now: every core's busy time (os.cpus) less this process's
 * own (process.cpuUsage, all its threads and workers), over a window. The 1-minute load
 * average, which this replaces for deciding whether ORT's threads may spin, lags by a minute
 * and counts this process's own threads as load.
 */
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CpuSnapshot {
  /** performance.now() at the reading, ms. */
  at: number;
  /** Busy time summed over every core (user, nice, system, irq), ms. */
  busyMs: number;
  /** This process's CPU time (user + system, every thread), ms. */
  ownMs: number;
}

export function cpuSnapshot(): CpuSnapshot {
  let busy = 0;
  for (const c of cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  const own = process.cpuUsage();
  return { at: performance.now(), busyMs: busy, ownMs: (own.user + own.system) / 1000 };
}

/** Cores' worth of CPU that other processes used between two snapshots (never below 0). */
export function othersCores(a: CpuSnapshot, b: CpuSnapshot): number {
  const wall = b.at - a.at;
  if (!(wall > 0)) return 0;
  return Math.max(0, (b.busyMs - a.busyMs - (b.ownMs - a.ownMs)) / wall);
}

/** Shortest window read: os.cpus() counts in 10-ms ticks, so 200 ms of 2 cores is ±5 %. */
const MIN_WINDOW_MS = 200;
/** Older than this, the last reading says little about now: a fresh window is read instead. */
const MAX_WINDOW_MS = 10_000;
let last: CpuSnapshot | undefined;

/**
 * Other processes' CPU use now, in cores: over the window since the previous call when that is
 * 0.2–10 s old (no wait), else over a fresh 0.2-s window.
 */
export async function othersCoresNow(): Promise<number> {
  let now = cpuSnapshot();
  if (!last || now.at - last.at > MAX_WINDOW_MS) {
    last = now;
    await sleep(MIN_WINDOW_MS);
    now = cpuSnapshot();
  } else if (now.at - last.at < MIN_WINDOW_MS) {
    await sleep(MIN_WINDOW_MS - (now.at - last.at));
    now = cpuSnapshot();
  }
  const cores = othersCores(last, now);
  last = now;
  return cores;
}

/**
 * Whether `threads` busy threads would find no core free: other processes' use plus them above
 * the cores by half a core or more. Then ORT's idle workers should sleep, not spin: spinning
 * takes the CPU from the step itself and from the other processes (bench/RESULTS.md).
 */
export function oversubscribed(others: number, threads: number, cores = cpus().length): boolean {
  return others + threads >= cores + 0.5;
}
