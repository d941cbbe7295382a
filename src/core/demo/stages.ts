/**
 * Resumable stages on top of the run store (src/core/runs): each stage of the demo is a run
 * (`runs/<id>/` with config, status, metrics, log, result), identified by a stage key that
 * hashes everything its output depends on. A stage whose key already has a succeeded run is
 * not redone: its stored result is returned. An interrupted or failed attempt stays on disk,
 * marked, next to the attempt that finishes.
 *
 * This is the seam where the demo could move onto the experiment queue: a stage is a pure
 * function of its recorded config, run in order.
 */
import { NmlabError } from '../../shared/errors';
import { RunStore, type Run } from '../runs/store';

export interface StageOutcome<T> {
  result: T;
  runId: string;
  /** True when a finished run was found and nothing was computed. */
  reused: boolean;
  seconds: number;
}

export class StageRunner {
  private readonly store: RunStore;
  private done = new Map<string, string>();
  /** Stages computed (not reused) in this process, by kind. */
  readonly computed: Record<string, number> = {};

  private constructor(store: RunStore) {
    this.store = store;
  }

  static async open(projectDir: string): Promise<StageRunner> {
    const s = new StageRunner(new RunStore(projectDir));
    for (const r of await s.store.list()) {
      const key = r.config.stageKey;
      if (r.status === 'succeeded' && typeof key === 'string') s.done.set(key, r.id);
    }
    return s;
  }

  /** Whether a stage already finished (in this or an earlier process). */
  has(key: string): boolean {
    return this.done.has(key);
  }

  /**
   * Run `fn` as a run of `kind` unless `key` already has a succeeded run; either way return
   * the result. `fn` gets the run to log and record metrics on. `parse` checks a stored result.
   */
  async stage<T>(kind: string, key: string, config: Record<string, unknown>, fn: (run: Run) => Promise<T>, parse: (raw: unknown) => T): Promise<StageOutcome<T>> {
    const prior = this.done.get(key);
    if (prior) {
      const raw = await this.store.result(prior);
      try {
        return { result: parse(raw), runId: prior, reused: true, seconds: 0 };
      } catch (err) {
        // A result this version cannot read is recomputed, not trusted.
        this.done.delete(key);
        if (!(err instanceof Error)) throw err;
      }
    }
    const t0 = performance.now();
    const run = await this.store.create(kind, { stageKey: key, ...config });
    try {
      const result = await fn(run);
      await run.succeed(result);
      this.done.set(key, run.id);
      this.computed[kind] = (this.computed[kind] ?? 0) + 1;
      return { result, runId: run.id, reused: false, seconds: (performance.now() - t0) / 1000 };
    } catch (err) {
      const cancelled = err instanceof NmlabError && err.code === 'CANCELLED';
      await run.fail(err, cancelled ? 'cancelled' : 'failed').catch(() => undefined);
      throw err;
    }
  }
}
