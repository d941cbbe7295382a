/**
 * `nmlab worker` outside Slurm: one study job run in this process through runStudyJob, as the
 * attempt the command names — a requeued task's attempt that queue.json has not recorded — and,
 * without one, as the queue's latest attempt (none yet: a clear error). The Slurm side (arrays,
 * SIGTERM, requeue) is test/integration/slurm.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { workerCommand } from '../../src/cli/commands/worker';
import { createExperiment, readQueue } from '../../src/core/experiments/store';
import { runStudyJob } from '../../src/core/jobs/kinds/study';
import { TuneRunResult } from '../../src/shared/contract/tuning';
import { makeFeatureProject } from './experiments-project';

let root: string;
let project: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nmlab-worker-'));
  project = join(root, 'project');
  await makeFeatureProject(project, join(root, 'home'), { backbones: [{ id: 'g0', gamma: 0 }] });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('nmlab worker', () => {
  it('runs the job as the attempt it is given, into that attempt\'s run; without one, the queue\'s (none yet: an error)', async () => {
    const { file } = await createExperiment(
      project,
      {
        name: 'Worker',
        backbones: [{ id: 'g0', gamma: 0 }],
        embeddings: [{ id: 'synth', train: { features: 'features/{backbone}/synth/train.npy', labels: 'features/{backbone}/synth/train.labels.npy' }, test: { features: 'features/{backbone}/synth/test.npy', labels: 'features/{backbone}/synth/test.labels.npy' } }],
        methods: [{ method: 'lp', params: { epochs: 2 } }],
      },
      'worker',
    );
    const key = file.jobs.find((j) => j.stage === 'tune')!.key;
    await expect(runStudyJob(project, 'worker', key, { signal: new AbortController().signal })).rejects.toThrow(/job "tune\/g0\/synth\/lp\/f1\/s0\/eta0" of study "worker" has no run yet/);

    let out = '';
    const args = parseArgs({ args: ['--project', project, '--study', 'worker', '--job', key, '--attempt', '3'], options: workerCommand.options, strict: true });
    const code = await workerCommand.run(args, { out: (t) => (out += t), err: (t) => (out += t) });
    expect(code).toBe(0);
    expect(out).toMatch(/run worker\.j0000\.a3 succeeded/);
    const run = join(project, 'runs', 'worker.j0000.a3');
    expect(JSON.parse(await readFile(join(run, 'status.json'), 'utf8')).status).toBe('succeeded');
    const result = TuneRunResult.parse(JSON.parse(await readFile(join(run, 'result.json'), 'utf8')));
    expect(result.params).toMatchObject({ method: 'lp', epochs: 2 });
    expect(result.test!.accuracy).toBeGreaterThan(0.5);
    expect(JSON.parse(await readFile(join(run, 'config.json'), 'utf8'))).toMatchObject({ kind: 'study.tune', experimentId: 'worker', jobKey: key, attempt: 3 });
    // The queue's file is the queue's: the worker ran attempt 3 without recording it there.
    expect((await readQueue(project, file)).entries.find((e) => e.key === key)).toMatchObject({ attempts: 0, runId: null });
  }, 60_000);
});
