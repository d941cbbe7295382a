/**
 * The slurm executor against a real Slurm (issue 13): the test starts a one-node cluster on
 * this machine with scripts/slurm-up.sh and stops it with scripts/slurm-down.sh; where Slurm
 * is not installed (or will not start, or this is not root) the suite is skipped with the
 * reason in its title. Real sbatch arrays, real compute-node tasks running `nmlab worker`.
 *   - a study runs to completion on Slurm with results equal to the local executor's;
 *   - kill -9 of the submitting NMLab mid-study, a task lost meanwhile: status still shows the
 *     Slurm jobs, resume re-attaches to them and resubmits only the lost one;
 *   - a cancelled study leaves no Slurm job behind;
 *   - the app's path (the API the builder and the queue view use): create with the slurm
 *     executor, queue events and the study's jobs carry their Slurm ids and states;
 *   - SIGTERM to a running task (as at a time limit): its run is interrupted, the task requeues
 *     itself and the next attempt finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { QueueFile } from '../../src/shared/contract/experiments';
import { TuneRunResult } from '../../src/shared/contract/tuning';
import { SlurmStudyState } from '../../src/shared/contract/executors';
import { makeFeatureProject } from './experiments-project';
import { createLabBackend } from '../../src/core/backend';
import { parseStudyText } from '../../src/core/experiments/spec';
import type { ExperimentEvent } from '../../src/shared/contract/experiments';

const root = join(__dirname, '..', '..');
const tsx = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
const cliArgs = ['--import', tsx, join(root, 'src', 'cli', 'main.ts')];
const STATE_DIR = process.env.NMLAB_SLURM_STATE ?? '/var/tmp/nmlab-slurm';

/** Start the cluster at collection time, so the suite can be skipped with the reason. */
function slurmUp(): string | null {
  if (process.platform !== 'linux') return 'Slurm runs on Linux only';
  const r = spawnSync('bash', [join(root, 'scripts', 'slurm-up.sh')], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return (r.stderr || r.error?.message || `slurm-up.sh exited ${r.status}`).trim().split('\n').pop() ?? 'slurm-up.sh failed';
  process.env.SLURM_CONF = join(STATE_DIR, 'slurm.conf');
  return null;
}
const unavailable = slurmUp();

let tmp: string;
let project: string;
const env = () => ({ ...process.env, NMLAB_HOME: join(tmp, 'home') });

// A small study on embedding files: 1 backbone × 1 task × 2 methods × 2 seeds = 4 tuning
// jobs, then the aggregation that depends on all of them (two stages, two arrays).
const spec = (epochs: number, methods = '[{ method: lp }, { method: mlp }]', seeds = '[0, 1]') => `
name: Slurm
backbones: [{ id: g0, gamma: 0 }]
embeddings:
  - id: synth
    train: { features: "features/{backbone}/synth/train.npy", labels: "features/{backbone}/synth/train.labels.npy" }
    test: { features: "features/{backbone}/synth/test.npy", labels: "features/{backbone}/synth/test.labels.npy" }
methods: ${methods}
seeds: ${seeds}
defaults: { epochs: ${epochs}, batchSize: 32 }
`;

function nmlab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cliArgs, ...args], { cwd: tmp, env: env(), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `nmlab run` on Slurm in the background; `output()` is what it printed so far (for failure messages). */
function startRun(specFile: string, id: string): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, [...cliArgs, 'run', specFile, '--project', project, '--id', id, '--executor', 'slurm', '--profile', 'test'], { cwd: tmp, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let printed = '';
  child.stdout?.on('data', (d: Buffer) => (printed += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (printed += d.toString()));
  return { child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))), output: () => printed };
}

async function readJson<T>(file: string, schema: { parse: (x: unknown) => T }): Promise<T> {
  return schema.parse(JSON.parse(await readFile(file, 'utf8')));
}
const slurmState = (id: string) => readJson(join(project, 'experiments', id, 'slurm', 'state.json'), SlurmStudyState);
const queue = (id: string) => readJson(join(project, 'experiments', id, 'queue.json'), QueueFile);

async function until<T>(what: string, f: () => Promise<T | null | undefined | false>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Slurm jobs of a study still known to squeue. */
function squeueOf(id: string): string[] {
  const r = spawnSync('squeue', ['-h', '-r', '-n', `nmlab-${id}-tune,nmlab-${id}-aggregate`, '-o', '%i %T'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}
const TUNE_JOBS = 4;

(unavailable ? describe.skip : describe)(`slurm executor on a one-node Slurm${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'nmlab-slurm-'));
    project = join(tmp, 'project');
    await makeFeatureProject(project, join(tmp, 'home'), { backbones: [{ id: 'g0', gamma: 0 }], targets: [] });
    await writeFile(join(tmp, 'short.yaml'), spec(12));
    await writeFile(join(tmp, 'long.yaml'), spec(400));
    await writeFile(join(tmp, 'one.yaml'), spec(150, '[{ method: lp }]', '[0]'));
    // The test's profile runs NMLab from these sources on the node (the node is this machine).
    await mkdir(join(project, 'slurm', 'profiles'), { recursive: true });
    const nmlabCmd = [process.execPath, ...cliArgs].map((a) => JSON.stringify(a)).join(' ');
    await writeFile(join(project, 'slurm', 'profiles', 'test.yaml'), `nmlab: ${JSON.stringify(nmlabCmd)}\ndefaults: { cpus: 1, memory: 1G, time: "10" }\npollSeconds: 0.5\nsignalSeconds: 30\n`);
  });
  afterAll(async () => {
    spawnSync('bash', [join(root, 'scripts', 'slurm-down.sh')], { encoding: 'utf8', timeout: 60_000 });
    // NMLAB_KEEP_TMP=1 keeps the project (scripts, task logs, runs) for a look after a failure.
    if (tmp && !process.env.NMLAB_KEEP_TMP) await rm(tmp, { recursive: true, force: true });
  });

  it('runs a study to completion with results equal to the local executor', async () => {
    const local = nmlab('run', join(tmp, 'short.yaml'), '--project', project, '--id', 'same-local', '--concurrency', '2');
    expect(local.code, local.stderr).toBe(0);
    const t0 = Date.now();
    const onSlurm = nmlab('run', join(tmp, 'short.yaml'), '--project', project, '--id', 'same-slurm', '--executor', 'slurm', '--profile', 'test');
    expect(onSlurm.code, onSlurm.stderr + nmlab('experiment', 'status', 'same-slurm', '--project', project).stdout).toBe(0);
    console.log(`${TUNE_JOBS + 1} jobs on Slurm: ${((Date.now() - t0) / 1000).toFixed(1)} s wall (load ${loadavg()[0].toFixed(1)})`);
    const state = await slurmState('same-slurm');
    // One array per stage; the aggregation waits for the tuning array (afterok).
    expect(state.submissions.map((x) => [x.stage, x.keys.length])).toEqual([
      ['tune', TUNE_JOBS],
      ['aggregate', 1],
    ]);
    expect(await readFile(join(project, state.submissions[0].script), 'utf8')).toContain(`#SBATCH --array=0-${TUNE_JOBS - 1}`);
    expect(await readFile(join(project, state.submissions[1].script), 'utf8')).toContain(`#SBATCH --dependency=afterok:${state.submissions[0].arrayJobId}\n`);
    const q = await queue('same-slurm');
    expect(q.entries.every((e) => e.state === 'succeeded')).toBe(true);
    for (let j = 0; j < TUNE_JOBS; j++) {
      const a = await readJson(join(project, 'runs', `same-local.j000${j}.a1`, 'result.json'), TuneRunResult);
      const b = await readJson(join(project, 'runs', `same-slurm.j000${j}.a1`, 'result.json'), TuneRunResult);
      expect(b.test?.accuracy).toBe(a.test?.accuracy);
      expect(b.test?.macroF1).toBe(a.test?.macroF1);
      expect(b.singularValues).toEqual(a.singularValues);
      expect(b.trainRows).toBe(a.trainRows);
    }
    // The compare table reads the Slurm study like a local one.
    const cmp = nmlab('experiment', 'compare', 'same-slurm', '--project', project, '--json');
    expect(cmp.code, cmp.stderr).toBe(0);
  }, 300_000);

  it('re-attaches after kill -9 of the submitting NMLab and resubmits only the lost job', async () => {
    const id = 'killed';
    const { child, exited } = startRun(join(tmp, 'short.yaml'), id);
    const state = await until('the submission', async () => {
      const s = await slurmState(id);
      return Object.keys(s.jobs).length === TUNE_JOBS + 1 ? s : null;
    });
    child.kill('SIGKILL');
    await exited;
    // While nobody watches, Slurm loses one task (scancel stands in for a node failure); the
    // aggregation that waits for it is dropped by Slurm with it.
    const lostKey = Object.keys(state.jobs)[TUNE_JOBS - 1];
    const lostId = state.jobs[lostKey].slurmId;
    expect(spawnSync('scancel', [lostId]).status).toBe(0);
    // status does not take the submitted jobs for dead ones: they are Slurm's.
    const st = nmlab('experiment', 'status', id, '--project', project);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toContain(`slurm ${state.jobs[Object.keys(state.jobs)[0]].slurmId}`);
    expect(st.stdout).not.toContain('interrupted  ');
    const resumed = nmlab('experiment', 'resume', id, '--project', project);
    expect(resumed.code, resumed.stderr).toBe(0);
    const q = await queue(id);
    expect(q.entries.every((e) => e.state === 'succeeded')).toBe(true);
    const after = await slurmState(id);
    expect(after.submissions.map((x) => x.keys)).toEqual([...state.submissions.map((x) => x.keys), [lostKey], ['aggregate']]);
    for (const e of q.entries) expect(e.attempts, e.key).toBe(e.key === lostKey || e.key === 'aggregate' ? 2 : 1);
    // The lost attempt stays on disk, marked.
    const lost = q.entries.find((e) => e.key === lostKey)!;
    const firstStatus = JSON.parse(await readFile(join(project, 'runs', lost.runIds[0], 'status.json'), 'utf8')) as { status: string };
    expect(firstStatus.status).toBe('interrupted');
  }, 300_000);

  it('requeues a task that gets SIGTERM (as before a time limit) and finishes the next attempt', async () => {
    const id = 'sigterm';
    const { exited, output } = startRun(join(tmp, 'one.yaml'), id);
    const state = await until('the submission', async () => {
      const s = await slurmState(id);
      return Object.keys(s.jobs).length === 2 ? s : null;
    });
    const key = Object.keys(state.jobs)[0];
    const runId = `${id}.j0000.a1`;
    // Once the worker trains (its metrics file grows), signal the batch shell, which is NMLab itself (exec).
    await until('the first run to train', async () => (await readFile(join(project, 'runs', runId, 'metrics.jsonl'), 'utf8')).length > 0);
    const sig = spawnSync('scancel', ['--signal=TERM', '--batch', state.jobs[key].slurmId], { encoding: 'utf8' });
    expect(sig.status, sig.stderr).toBe(0);
    // Slurm makes a requeued job wait for its old credential to expire (cred_expire, 15 s in
    // scripts/slurm-up.sh's cluster): forcing an earlier start gets it killed ("Job credential
    // revoked"), so the test waits like a user would.
    await until('the task to be requeued', async () => {
      const r = spawnSync('scontrol', ['-o', 'show', 'job', state.jobs[key].slurmId], { encoding: 'utf8' });
      return /Restarts=1/.test(r.stdout);
    });
    expect(await exited, `nmlab run printed:\n${output()}`).toBe(0);
    const q = await queue(id);
    const e = q.entries.find((x) => x.key === key)!;
    expect(e.state).toBe('succeeded');
    expect(e.attempts).toBe(2);
    const first = JSON.parse(await readFile(join(project, 'runs', runId, 'status.json'), 'utf8')) as { status: string; error: string };
    expect(first.status).toBe('interrupted');
    expect(first.error).toMatch(/SIGTERM/);
    // Requeued by Slurm, not resubmitted by NMLab.
    expect((await slurmState(id)).submissions).toHaveLength(2);
  }, 300_000);

  it('cancels a study so that no Slurm job is left behind', async () => {
    const id = 'cancelled';
    const { exited } = startRun(join(tmp, 'long.yaml'), id);
    await until('a running task', async () => {
      const s = await slurmState(id);
      return Object.values(s.jobs).some((j) => j.state === 'RUNNING');
    });
    expect(squeueOf(id).length).toBeGreaterThan(0);
    const c = nmlab('experiment', 'cancel', id, '--project', project);
    expect(c.code, c.stderr).toBe(0);
    expect(await exited).toBe(1);
    await until('Slurm to forget the jobs', async () => squeueOf(id).length === 0, 60_000);
    // Under load a short fit may finish before the cancel; every other job is cancelled.
    const q = await queue(id);
    expect(q.entries.every((e) => e.state === 'cancelled' || (e.state === 'succeeded' && e.key !== 'aggregate'))).toBe(true);
    expect(q.entries.find((e) => e.key === 'aggregate')?.state).toBe('cancelled');
  }, 300_000);

  it('runs a study created through the API with the slurm executor, Slurm ids and states in its jobs and queue events', async () => {
    const backend = createLabBackend({ home: join(tmp, 'home') });
    const seen = new Map<string, Set<string>>();
    const stop = backend.onEvent('experiment', (e: ExperimentEvent) => {
      if (e.type !== 'queue' || e.experimentId !== 'api') return;
      for (const j of e.jobs) if (j.slurm) (seen.get(j.key) ?? seen.set(j.key, new Set()).get(j.key)!).add(j.slurm.state);
    });
    try {
      const spec = parseStudyText(await readFile(join(tmp, 'short.yaml'), 'utf8'), 'short.yaml');
      const created = await backend.handlers.experiments.create({ projectDir: project, spec, id: 'api', start: true, executor: { name: 'slurm', profile: 'test' } });
      expect(created.jobs.every((j) => j.slurm && /^\d+_\d+$/.test(j.slurm.id))).toBe(true);
      // Followed by this process: the queue view offers Cancel all.
      expect(created.summary.active).toBe(true);
      await backend.experiments.waitIdle(project, 'api');
      const d = await backend.handlers.experiments.get({ projectDir: project, id: 'api' });
      expect(d.jobs.map((j) => j.state)).toEqual(Array(TUNE_JOBS + 1).fill('succeeded'));
      const state = await slurmState('api');
      expect(d.jobs.map((j) => j.slurm?.id)).toEqual(d.jobs.map((j) => state.jobs[j.key].slurmId));
      expect(d.jobs.every((j) => j.slurm?.state === 'ENDED')).toBe(true);
      // The queue view saw each job waiting or running in Slurm before it ended.
      for (const j of d.jobs) expect([...(seen.get(j.key) ?? [])].some((x) => x === 'PENDING' || x === 'RUNNING'), j.key).toBe(true);
    } finally {
      stop();
      await backend.dispose();
    }
  }, 300_000);
});
