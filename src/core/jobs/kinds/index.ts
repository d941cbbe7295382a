/**
 * The registry of job kinds the worker can run. To add a kind: add its spec to `JobSpec` in
 * src/shared/contract/jobs.ts, write `kinds/<kind>.ts` exporting `run: JobRun<'<kind>'>`, and
 * add its line here (the mapped type makes a missing line a type error). Modules load lazily,
 * so a selftest never pays for loading TensorFlow.js.
 */
import type { JobSpec } from '../../../shared/contract/jobs';
import type { JobRun } from './types';

type Registry = { [K in JobSpec['kind']]: () => Promise<{ run: JobRun<K> }> };

export const jobKinds: Registry = {
  doctor: () => import('./doctor'),
  selftest: () => import('./selftest'),
  pretrain: () => import('./pretrain'),
  features: () => import('./features'),
  tune: () => import('./tune'),
  study: () => import('./study'),
  dataset: () => import('./dataset'),
  backbone: () => import('./backbone'),
  demo: () => import('./demo'),
};

export type { JobContext, JobRun, SpecOf } from './types';
