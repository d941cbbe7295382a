/**
 * `selftest`: counts `steps` at `intervalMs`, reporting progress and a metric per step, so the
 * job machinery (progress, ETA, cancel, crash reporting) can be seen working without any ML.
 * With `crashAt` the worker kills its own process at that step, as an out-of-memory kill would.
 * Its result names the onnxruntime threads the worker would use (the runner's share of cores).
 */
import type { JobRun } from './types';
import { sleep } from './cancel';
import { ortThreads } from '../../onnx/providers';

function crash(): void {
  // SIGKILL cannot be caught: the process is gone before it can send anything.
  process.kill(process.pid, 'SIGKILL');
}

export const run: JobRun<'selftest'> = async (spec, ctx) => {
  ctx.progress(0, spec.steps, 'starting');
  if (spec.crashAt === 0) crash();
  for (let step = 1; step <= spec.steps; step++) {
    await sleep(spec.intervalMs, ctx.signal, `step ${step - 1} of ${spec.steps}`);
    if (spec.crashAt === step) crash();
    ctx.metric('count', step, { value: step, square: step * step });
    ctx.progress(step, spec.steps, `step ${step} of ${spec.steps}`);
  }
  return { steps: spec.steps, pid: process.pid, ortThreads: ortThreads() };
};
