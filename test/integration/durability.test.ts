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
import { ExperimentDetail, QueueFile } from '../../src/shared/contract/experiments';
import { TuneRunResult } from '../../src/shared/contract/tuning';
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
  const r = spawnSync(process.execPath, [...cliArgs, ...args], { cwd: tmp, env: env(), encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function startRun(id: string, args = ['run', join(tmp, 'spec.yaml'), '--project', project, '--id', id, '--concurrency', '1']): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, [...cliArgs, ...args], { cwd: tmp, env: env(), stdio: 'ignore' });
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
  kind: string;
  status: string;
  pid: number | null;
}

async function runsOf(exp: string, dir = project): Promise<RunState[]> {
  const names = (await readdir(join(dir, 'runs')).catch(() => [] as string[])).filter((n) => n.startsWith(`${exp}.`)).sort();
  const out: RunState[] = [];
  for (const n of names) {
    try {
      const st = (await readJson(join(dir, 'runs', n, 'status.json'))) as { status: string; pid: number | null };
      const config = (await readJson(join(dir, 'runs', n, 'config.json'))) as { kind: string };
      out.push({ id: n, kind: config.kind, status: st.status, pid: st.pid });
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

/**
 * Processes this file killed with SIGKILL. A write of theirs cut between its temporary file and
 * the rename leaves that file (`.<name>.<pid>.<8 hex>.tmp`, src/core/fs/atomic.ts) and never a
 * torn .json: such files are the garbage a kill may leave (readers remove a dead run's own),
 * while a temporary file of any other process is a write that went wrong.
 */
const killed = new Set<number>();

/** Every .json file under the project parses (no torn writes anywhere); no temporary file but a killed process's. */
async function everyJsonParses(root = project): Promise<number> {
  let n = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.json')) {
        expect(() => JSON.parse(readFileSync(p, 'utf8')), p).not.toThrow();
        n++;
      } else if (e.name.endsWith('.tmp') && !killed.has(Number(/\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(e.name)?.[1]))) throw new Error(`left-over temporary file ${p}`);
    }
  };
  await walk(root);
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
    killed.add(child.pid!);
    child.kill('SIGKILL');
    expect(await exited).toMatchObject({ signal: 'SIGKILL' });
    // The orphaned worker notices its parent is gone and stops by itself (it may be cut mid-write).
    killed.add(victim.pid!);
    await until('the orphaned worker to exit', async () => !alive(victim.pid!), 20_000);
    await checkAfterKill('kill-app', victim.id);
  }, 400_000);

  it('SIGKILL of a worker mid-run: the queue carries on, the run is marked interrupted, resume completes', async () => {
    const { exited } = startRun('kill-worker');
    const victim = await until('a running worker', async () => (await runsOf('kill-worker')).find((r) => r.status === 'running' && r.pid !== null));
    killed.add(victim.pid!);
    process.kill(victim.pid!, 'SIGKILL');
    // The queue holder survives, runs the other jobs, and reports the failure in its exit code.
    const end = await exited;
    expect(end).toMatchObject({ code: 1, signal: null });
    const runs = await runsOf('kill-worker');
    expect(runs.filter((r) => r.status === 'succeeded').length).toBe(3);
    await checkAfterKill('kill-worker', victim.id);
  }, 400_000);
});

/**
 * A study on project objects (an image dataset, a pre-training axis): the queue holder is
 * killed with SIGKILL while a backbone is being pre-trained, resumed, and killed again while a
 * fit is training. Every job that had finished keeps its run (same folder, same result bytes),
 * the killed ones are marked interrupted, and a last resume completes the study.
 */
describe('kill -9 durability of a study: during pre-training and during tuning', () => {
  const STUDY = `
name: Kill study
pretrain:
  dataset: fm
  gammas: [0, 0.3]
  architecture: { stemWidth: 8, widths: [8, 16], blocks: [1, 1] }
  recipe: { epochs: 2, batchSize: 64 }
tasks: [{ id: fm, dataset: fm }]
ood: [{ id: fm-ood, source: fm, targets: [{ corruption: rotation, severity: 3 }] }]
methods: [{ method: lp }, { method: mlp }]
defaults: { epochs: 20 }
`;
  let dir: string;
  const data = join(root, 'resources', 'demo', 'fashion-mnist');

  beforeAll(async () => {
    dir = join(tmp, 'study-project');
    let r = nmlab('project', 'create', dir, '--name', 'kill study');
    expect(r.code, r.stderr).toBe(0);
    r = nmlab('dataset', 'import', '--project', dir, '--name', 'fm', '--id', 'fm', '--idx-images', join(data, 'train-images-idx3-ubyte.gz'), '--idx-labels', join(data, 'train-labels-idx1-ubyte.gz'), '--idx-test-images', join(data, 't10k-images-idx3-ubyte.gz'), '--idx-test-labels', join(data, 't10k-labels-idx1-ubyte.gz'));
    expect(r.code, r.stderr).toBe(0);
    await writeFile(join(tmp, 'study.yaml'), STUDY);
  }, 120_000);

  /** Kill the holder once a run of `kind` is running and some job has finished; check what is on disk. */
  async function killDuring(kind: string, args: string[]): Promise<{ victim: string; finished: Map<string, string> }> {
    const { child, exited } = startRun('kill-study', args);
    const victim = await until(`a running ${kind} job`, async () => {
      const runs = await runsOf('kill-study', dir);
      const running = runs.find((r) => r.kind === kind && r.status === 'running' && r.pid !== null);
      return runs.some((r) => r.status === 'succeeded') && running ? running : null;
    }, 400_000);
    killed.add(child.pid!).add(victim.pid!);
    child.kill('SIGKILL');
    expect(await exited).toMatchObject({ signal: 'SIGKILL' });
    await until('the orphaned worker to exit', async () => !alive(victim.pid!), 20_000);
    expect(await everyJsonParses(dir)).toBeGreaterThan(5);
    const st = nmlab('experiment', 'status', 'kill-study', '--project', dir, '--json');
    expect(st.code, st.stderr).toBe(0);
    const d = ExperimentDetail.parse(JSON.parse(st.stdout));
    expect(d.jobs.find((j) => j.runId === victim.id)!.state).toBe('interrupted');
    expect(((await readJson(join(dir, 'runs', victim.id, 'status.json'))) as { status: string }).status).toBe('interrupted');
    // Finished jobs: their run's result, byte for byte, to compare after the resume.
    const finished = new Map<string, string>();
    for (const j of d.jobs.filter((x) => x.state === 'succeeded')) finished.set(j.runId!, await readFile(join(dir, 'runs', j.runId!, 'result.json'), 'utf8'));
    expect(finished.size).toBeGreaterThan(0);
    return { victim: victim.id, finished };
  }

  it('loses nothing finished and completes on resume', async () => {
    const first = await killDuring('study.pretrain', ['run', join(tmp, 'study.yaml'), '--project', dir, '--id', 'kill-study', '--concurrency', '1']);
    const second = await killDuring('study.tune', ['experiment', 'resume', 'kill-study', '--project', dir, '--concurrency', '1']);
    const res = nmlab('experiment', 'resume', 'kill-study', '--project', dir, '--json');
    expect(res.code, res.stderr).toBe(0);
    const done = ExperimentDetail.parse(JSON.parse(res.stdout));
    expect(done.summary.counts.succeeded).toBe(done.summary.total);
    for (const { victim, finished } of [first, second]) {
      // The killed job ran again as a new attempt; its old run stays, marked.
      const again = done.jobs.find((j) => j.runIds.includes(victim))!;
      expect(again.runIds.indexOf(victim)).toBe(again.runIds.length - 2);
      expect(((await readJson(join(dir, 'runs', victim, 'status.json'))) as { status: string }).status).toBe('interrupted');
      // Nothing finished was redone or touched.
      for (const [runId, bytes] of finished) {
        expect(done.jobs.find((j) => j.runIds.includes(runId))!.runId).toBe(runId);
        expect(await readFile(join(dir, 'runs', runId, 'result.json'), 'utf8')).toBe(bytes);
      }
    }
    // Every fit has its result; the comparison has a row per backbone × task × method.
    for (const j of done.jobs.filter((x) => x.stage === 'tune')) TuneRunResult.parse(await readJson(join(dir, 'runs', j.runId!, 'result.json')));
    const c = nmlab('experiment', 'compare', 'kill-study', '--project', dir, '--json');
    expect(c.code, c.stderr).toBe(0);
    await expect(readFile(join(dir, 'experiments', 'kill-study', 'lock.json'))).rejects.toThrow();
    await everyJsonParses(dir);
  }, 1_500_000);
});
