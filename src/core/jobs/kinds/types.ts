/**
 * What a job kind implements. A kind is an async function of its spec that reports through
 * `ctx` and honours `ctx.signal` (STYLE.md convention 6: every job takes a cancellation
 * signal and reports where it stopped).
 */
import type { JobSpec } from '../../../shared/contract/jobs';

export interface JobContext {
  readonly jobId: string;
  /** Aborted when the user cancels; a kind should stop soon after and throw `cancelled()`. */
  readonly signal: AbortSignal;
  /** `done` of `total` units; the runner turns the observed rate into an ETA. */
  progress(done: number, total: number, message?: string): void;
  /** One point of a named series (e.g. `loss` at step 12 with one value per loss term). */
  metric(name: string, step: number, values: Record<string, number>): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

/** The spec of one kind, e.g. `SpecOf<'doctor'>`. */
export type SpecOf<K extends JobSpec['kind']> = Extract<JobSpec, { kind: K }>;

/** A job kind module: `export const run: JobRun<'mykind'> = async (spec, ctx) => result`. */
export type JobRun<K extends JobSpec['kind']> = (spec: SpecOf<K>, ctx: JobContext) => Promise<unknown>;
