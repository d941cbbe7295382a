/**
 * The slurm executor's pure parts, without Slurm: batch scripts (run by bash with Slurm's
 * environment variables set by hand, `nmlab` replaced by a printer), resources per stage,
 * dependencies, array chunks, stage order of a job graph, parsing of squeue/sbatch output,
 * and profile validation.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlurmProfile } from '../../src/shared/contract/executors';
import { batchScript, chunkTasks, stageResources, type BatchScriptInput } from '../../src/core/executors/script';
import { parseSbatch, parseSqueue } from '../../src/core/executors/slurmctl';
import { stageOrder } from '../../src/core/executors/slurm';
import { parseProfile } from '../../src/core/executors/profile';

const profile = (raw: unknown = {}) => SlurmProfile.parse(raw);

function input(over: Partial<BatchScriptInput> = {}): BatchScriptInput {
  return {
    projectDir: "/shared/lab's project",
    experimentId: 'noise-study',
    stage: 'tune',
    tasks: [
      { key: 'g0/synth/lp/f1/s0', attempt: 1 },
      { key: "odd key $HOME `x` 'q'", attempt: 3 },
    ],
    profile: profile(),
    defaultNmlab: '/usr/bin/node /opt/nmlab/bin/nmlab.mjs',
    afterOk: [],
    logDir: '/shared/logs',
    ...over,
  };
}

/** Run a script's body with bash as Slurm would for one array task, `exec` printing its argv. */
async function runTask(script: string, env: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'nmlab-sbatch-'));
  try {
    const printer = join(dir, 'argv.sh');
    await writeFile(printer, '#!/bin/bash\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });
    const file = join(dir, 'job.sbatch');
    await writeFile(file, script);
    const r = spawnSync('bash', [file], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PRINTER: printer, ...env }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split('\n').slice(0, -1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('batch scripts', () => {
  it('runs the worker for the array task\'s key, attempt + restarts, with quoting intact', async () => {
    const script = batchScript(input({ profile: profile({ nmlab: 'ARGV' }) }));
    const sh = (s: string) => s.replace('exec ARGV', `exec "$PRINTER"`);
    expect(await runTask(sh(script), { SLURM_ARRAY_TASK_ID: '0' })).toEqual([
        'worker', '--project', "/shared/lab's project", '--study', 'noise-study', '--job', 'g0/synth/lp/f1/s0', '--attempt', '1',
    ]);
    // A requeued task (SLURM_RESTART_COUNT=2) runs a later attempt; the odd key survives bash.
    expect(await runTask(sh(script), { SLURM_ARRAY_TASK_ID: '1', SLURM_RESTART_COUNT: '2' })).toEqual([
      'worker', '--project', "/shared/lab's project", '--study', 'noise-study', '--job', "odd key $HOME `x` 'q'", '--attempt', '5',
    ]);
  });

  it('writes the #SBATCH lines: array, log, requeue, signal, resources, dependency', () => {
    const p = profile({
      setup: ['module load nodejs/20'],
      signalSeconds: 90,
      defaults: { partition: 'cpu', account: 'lab', time: '1:00:00', cpus: 2, memory: '4G', extra: ['--constraint=avx2'] },
      stages: { tune: { partition: 'gpu', gpus: 'a100:1', memory: '16G', extra: ['--exclusive'] } },
    });
    const text = batchScript(input({ profile: p, afterOk: ['101', '99_3'] }));
    const lines = text.split('\n').filter((l) => l.startsWith('#SBATCH ')).map((l) => l.slice(8));
    expect(lines).toEqual([
      '--job-name=nmlab-noise-study-tune',
      '--array=0-1',
      '--output=/shared/logs/tune-%A_%a.out',
      '--open-mode=append',
      '--requeue',
      '--signal=B:TERM@90',
      '--partition=gpu',
      '--account=lab',
      '--time=1:00:00',
      '--cpus-per-task=2',
      '--mem=16G',
      '--gpus=a100:1',
      '--constraint=avx2',
      '--exclusive',
      '--dependency=afterok:101:99_3',
      '--kill-on-invalid-dep=yes',
    ]);
    // The setup lines come before NMLab starts; the default command is used without a profile one.
    expect(text.indexOf('module load nodejs/20')).toBeLessThan(text.indexOf('exec /usr/bin/node /opt/nmlab/bin/nmlab.mjs worker'));
    expect(text.startsWith('#!/bin/bash\n')).toBe(true);
  });

  it('merges stage resources over the defaults', () => {
    const p = profile({ defaults: { cpus: 4, time: '30' }, stages: { pretrain: { gpus: 1, time: '2:00:00' } } });
    expect(stageResources(p, 'pretrain')).toEqual({ cpus: 4, time: '2:00:00', gpus: 1 });
    expect(stageResources(p, 'tune')).toEqual({ cpus: 4, time: '30' });
  });

  it('splits stages larger than an array into chunks and refuses empty or oversized arrays', () => {
    const tasks = Array.from({ length: 2345 }, (_, i) => i);
    expect(chunkTasks(tasks).map((c) => c.length)).toEqual([1000, 1000, 345]);
    expect(chunkTasks(tasks).flat()).toEqual(tasks);
    expect(() => batchScript(input({ tasks: [] }))).toThrow(/no jobs/);
    expect(() => batchScript(input({ tasks: Array.from({ length: 1001 }, (_, i) => ({ key: `k${i}`, attempt: 1 })) }))).toThrow(/more than 1000/);
  });
});

describe('job graph and Slurm output', () => {
  it('orders stages so every dependency is submitted first, and rejects cycles and unknown keys', () => {
    const g = [
      { key: 'agg', index: 0, stage: 'aggregate', deps: ['t1', 't2'] },
      { key: 't1', index: 1, stage: 'tune', deps: ['f'] },
      { key: 't2', index: 2, stage: 'tune', deps: ['f'] },
      { key: 'f', index: 3, stage: 'features', deps: ['p'] },
      { key: 'p', index: 4, stage: 'pretrain', deps: [] },
    ];
    expect(stageOrder(g)).toEqual(['pretrain', 'features', 'tune', 'aggregate']);
    expect(() => stageOrder([...g, { key: 'x', index: 5, stage: 'pretrain', deps: ['agg'] }])).toThrow(/cycle/);
    expect(() => stageOrder([{ key: 'a', index: 0, stage: 'tune', deps: ['nope'] }])).toThrow(/"nope"/);
  });

  it('parses squeue and sbatch output', () => {
    const q = parseSqueue('12_0|RUNNING|None\n12_1|PENDING|Resources\n13|PENDING|Dependency\n\n');
    expect([...q.entries()]).toEqual([
      ['12_0', { state: 'RUNNING', reason: null }],
      ['12_1', { state: 'PENDING', reason: 'Resources' }],
      ['13', { state: 'PENDING', reason: 'Dependency' }],
    ]);
    expect(parseSbatch('4711\n')).toBe('4711');
    expect(parseSbatch('4711;cluster-a\n')).toBe('4711');
    expect(() => parseSbatch('sbatch: error: Batch job submission failed')).toThrow(/not a job id/);
  });
});

describe('profiles', () => {
  it('fills defaults and names the file and key of a mistake', () => {
    const p = parseProfile({ defaults: { partition: 'gpu' } }, 'slurm/profiles/a.yaml');
    expect(p.pollSeconds).toBe(5);
    expect(p.signalSeconds).toBe(60);
    expect(p.setup).toEqual([]);
    expect(() => parseProfile({ defaults: { time: '2 hours' } }, 'slurm/profiles/b.yaml')).toThrow(/slurm\/profiles\/b\.yaml.*defaults\.time: a Slurm time/);
    expect(() => parseProfile({ defaults: { memory: '4GB' } }, 'p.yaml')).toThrow(/defaults\.memory/);
    expect(() => parseProfile({ partiton: 'x' }, 'p.yaml')).toThrow(/partiton/);
    expect(() => parseProfile({ defaults: { extra: ['#SBATCH --x'] } }, 'p.yaml')).toThrow(/defaults\.extra\.0/);
  });
});
