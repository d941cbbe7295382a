/**
 * Durability (DESIGN §5): `kill -9` of the process holding the queue (`nmlab run`), and
 * separately of one worker, in the middle of an experiment. Afterwards every JSON file in the
 * project parses, finished runs are intact, the interrupted run is marked so on disk, and
 * `nmlab experiment resume` completes the experiment. Real processes, real signals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ExperimentDetail, QueueFile, TuneRunResult } from '../../src/shared/contract/experiments';
import { makeFeatureProject } from './experiments-project';

const root = join(__dirname, '..', '..');
// The CLI from the sources, as one process (no wrapper), so SIGKILL hits the queue holder itself.
const tsx = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
const cliArgs = ['--import', tsx, join(root, 'src', 'cli', 'main.ts')];

let tmp: string;
let project: string;
const env = () => ({ ...process.env, NMLAB_HOME: join(tmp, 'home') });

const SPEC = `
name: Durability
backbones: [{ id: g0, gamma: 0 }]
embeddings:
  - id: synth
    train: { features: "features/{backbone}/synth/train.npy", labels: "features/{backbone}/synth/train.labels.npy" }
    test: { features: "features/{backbone}/synth/test.npy", labels: "features/{backbone}/synth/test.labels.npy" }
methods: [{ method: lp }, { method: mlp }]
seeds: [0, 1]
defaults: { epochs: 12, batchSize: 32 }
`;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-durability-'));
  project = join(tmp, 'project');
  await makeFeatureProject(project, join(tmp, 'home'), { backbones: [{ id: 'g0', gamma: 0 }], targets: [] });
  await writeFile(join(tmp, 'spec.yaml'), SPEC);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function nmlab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cliArgs, ...args], { cwd: tmp, env: env(), encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function startRun(id: string): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, [...cliArgs, 'run', join(tmp, 'spec.yaml'), '--project', project, '--id', id, '--concurrency', '1'], { cwd: tmp, env: env(), stdio: 'ignore' });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8'));
}

interface RunState {
  id: string;
  status: string;
  pid: number | null;
}

async function runsOf(exp: string): Promise<RunState[]> {
  const names = (await readdir(join(project, 'runs')).catch(() => [] as string[])).filter((n) => n.startsWith(`${exp}.`)).sort();
  const out: RunState[] = [];
  for (const n of names) {
    try {
      const st = (await readJson(join(project, 'runs', n, 'status.json'))) as { status: string; pid: number | null };
      out.push({ id: n, status: st.status, pid: st.pid });
    } catch {
      /* being created */
    }
  }
  return out;
}

/** Poll until `pred` gives a value (or fail after `ms`). */
async function until<T>(what: string, pred: () => Promise<T | null | undefined | false>, ms = 180_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await pred();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Every .json file under the project parses (no torn writes anywhere). */
async function everyJsonParses(): Promise<number> {
  let n = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.json')) {
        expect(() => JSON.parse(readFileSync(p, 'utf8')), p).not.toThrow();
        n++;
      } else if (e.name.endsWith('.tmp')) throw new Error(`left-over temporary file ${p}`);
    }
  };
  await walk(project);
  return n;
}

async function checkAfterKill(exp: string, victimRun: string): Promise<void> {
  expect(await everyJsonParses()).toBeGreaterThan(5);
  QueueFile.parse(await readJson(join(project, 'experiments', exp, 'queue.json')));
  // Status through a fresh process: the job that was running is interrupted, and so is its run.
  const st = nmlab('experiment', 'status', exp, '--project', project, '--json');
  expect(st.code, st.stderr).toBe(0);
  const d = ExperimentDetail.parse(JSON.parse(st.stdout));
  const victim = d.jobs.find((j) => j.runId === victimRun)!;
  expect(victim.state).toBe('interrupted');
  expect(((await readJson(join(project, 'runs', victimRun, 'status.json'))) as { status: string }).status).toBe('interrupted');
  // Finished runs are intact: a whole result and a succeeded status.
  const finished = d.jobs.filter((j) => j.state === 'succeeded' && j.stage === 'tune');
  expect(finished.length).toBeGreaterThan(0);
  for (const j of finished) {
    const r = TuneRunResult.parse(await readJson(join(project, 'runs', j.runId!, 'result.json')));
    expect(r.test!.accuracy).toBeGreaterThan(0.5);
  }
  // Resume completes it: the interrupted job runs again as a new attempt; the old run stays marked.
  const res = nmlab('experiment', 'resume', exp, '--project', project, '--json');
  expect(res.code, res.stderr).toBe(0);
  const done = ExperimentDetail.parse(JSON.parse(res.stdout));
  expect(done.summary.counts.succeeded).toBe(done.summary.total);
  const again = done.jobs.find((j) => j.key === victim.key)!;
  expect(again.attempts).toBe(2);
  expect(again.runIds).toEqual([victimRun, again.runId]);
  expect(((await readJson(join(project, 'runs', victimRun, 'status.json'))) as { status: string }).status).toBe('interrupted');
  TuneRunResult.parse(await readJson(join(project, 'runs', again.runId!, 'result.json')));
  // The lock is released once the queue is done.
  await expect(readFile(join(project, 'experiments', exp, 'lock.json'))).rejects.toThrow();
  await everyJsonParses();
}

describe('kill -9 durability', () => {
  it('SIGKILL of the process holding the queue mid-run: readable project, intact finished runs, marked interrupted run, resume completes', async () => {
    const { child, exited } = startRun('kill-app');
    // Wait until one run has finished and the next one's worker is training.
    const victim = await until('a finished run and a running worker', async () => {
      const runs = await runsOf('kill-app');
      const running = runs.find((r) => r.status === 'running' && r.pid !== null);
      return runs.some((r) => r.status === 'succeeded') && running ? running : null;
    });
    child.kill('SIGKILL');
    expect(await exited).toMatchObject({ signal: 'SIGKILL' });
    // The orphaned worker notices its parent is gone and stops by itself.
    await until('the orphaned worker to exit', async () => !alive(victim.pid!), 20_000);
    await checkAfterKill('kill-app', victim.id);
  }, 400_000);

  it('SIGKILL of a worker mid-run: the queue carries on, the run is marked interrupted, resume completes', async () => {
    const { exited } = startRun('kill-worker');
    const victim = await until('a running worker', async () => (await runsOf('kill-worker')).find((r) => r.status === 'running' && r.pid !== null));
    process.kill(victim.pid!, 'SIGKILL');
    // The queue holder survives, runs the other jobs, and reports the failure in its exit code.
    const end = await exited;
    expect(end).toMatchObject({ code: 1, signal: null });
    const runs = await runsOf('kill-worker');
    expect(runs.filter((r) => r.status === 'succeeded').length).toBe(3);
    await checkAfterKill('kill-worker', victim.id);
  }, 400_000);
});
