/** `doctor`: measure the environment in a worker and return an EnvironmentReport. */
import type { JobRun } from './types';
import { runDoctor } from '../../env/doctor';

export const run: JobRun<'doctor'> = (spec, ctx) => runDoctor({ matmulSize: spec.matmulSize, signal: ctx.signal, progress: ctx.progress, log: ctx.log });
