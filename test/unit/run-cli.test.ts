/** `nmlab run SPEC --project DIR` in a terminal: Ctrl-C cancels the study on its queue. */
import { describe, it, expect } from 'vitest';
import { copyFile, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { nextSteps } from '../../src/cli/commands/run';

const fixtures = fileURLToPath(new URL('../fixtures/tuning/', import.meta.url));

/** A cheap study: two fits on embedding files (nmtune long enough to be stopped), and the aggregate. */
const SPEC = `name: Ctrl-C study
backbones: [{ id: files, gamma: 0 }]
embeddings:
  - id: fit
    train: { features: embeddings/train_x.npy, labels: embeddings/train_y.npy }
    test: { features: embeddings/test_x.npy, labels: embeddings/test_y.npy }
methods:
  - { method: nmtune, params: { epochs: 400 } }
  - { method: lp, params: { epochs: 400 } }
`;

/** The CLI detached (it leads its own process group, as a terminal's foreground job does), with its output collected. */
function spawnCli(args: string[]): { pid: number; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url)), ...args], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  return { pid: child.pid!, out: () => out, err: () => err, exited };
}

/** The first run (other than `skip`) whose fit has written two epochs, within a minute; null if none. */
async function fitUnderWay(project: string, skip: string | null = null): Promise<string | null> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    for (const run of await readdir(join(project, 'runs')).catch(() => [] as string[])) {
      if (run === skip) continue;
      const points = await readFile(join(project, 'runs', run, 'metrics.jsonl'), 'utf8').catch(() => '');
      if (points.split('\n').filter((l) => l.includes('"epoch"')).length >= 2) return run;
    }
  }
  return null;
}

describe('nmlab run', () => {
  it('Ctrl-C (SIGINT to the whole process group, workers too) cancels the running and pending jobs, prints the resume command, exits 130', async () => {
    const project = await mkdtemp(join(tmpdir(), 'nmlab-run-'));
    await writeFile(join(project, 'nmlab.json'), '{}');
    await mkdir(join(project, 'embeddings'));
    for (const [from, to] of [['lp_train_x', 'train_x'], ['lp_train_y', 'train_y'], ['lp_test_x', 'test_x'], ['lp_test_y', 'test_y']]) await copyFile(join(fixtures, `${from}.npy`), join(project, 'embeddings', `${to}.npy`));
    await writeFile(join(project, 'spec.yaml'), SPEC);
    const cli = spawnCli(['run', join(project, 'spec.yaml'), '--project', project, '--concurrency', '1']);
    // Once the first fit has written epochs (its worker is well into the job), Ctrl-C.
    const running = await fitUnderWay(project);
    expect(running, cli.err()).not.toBeNull();
    process.kill(-cli.pid, 'SIGINT');
    const code = await cli.exited;
    expect(code, cli.err()).toBe(130);
    const out = cli.out();
    const err = cli.err();

    const [id] = await readdir(join(project, 'experiments'));
    // The report ends with the one next step that applies: resume (nothing failed, so no retry).
    expect(out.trimEnd().split('\n').at(-1)).toBe(`Resume with \`nmlab experiment resume ${id} --project ${project}\`: it runs the study's 3 unfinished jobs.`);
    expect(out + err).not.toMatch(/retry/i);
    const exp = JSON.parse(await readFile(join(project, 'experiments', id, 'experiment.json'), 'utf8'));
    expect(exp.jobs.map((j: { stage: string }) => j.stage)).toEqual(['tune', 'tune', 'aggregate']);
    const queue = JSON.parse(await readFile(join(project, 'experiments', id, 'queue.json'), 'utf8'));
    // The running fit stopped after its step and is cancelled (not interrupted: its worker lived
    // through the SIGINT); the pending fit and the aggregate never started.
    expect(queue.entries.map((e: { state: string }) => e.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    const started = queue.entries.filter((e: { runId: string | null }) => e.runId !== null);
    expect(started.map((e: { runId: string }) => e.runId)).toEqual([running]);
    expect(JSON.parse(await readFile(join(project, 'runs', running!, 'status.json'), 'utf8')).status).toBe('cancelled');
    expect(out).toMatch(new RegExp(`^${id}: 0 of 3 jobs succeeded \\(0 failed, 3 cancelled, 0 interrupted, 0 pending\\)`));
    // The queue let go of the study.
    expect(await readdir(join(project, 'experiments', id))).not.toContain('lock.json');

    // `nmlab experiment resume` takes Ctrl-C the same way: the resumed fit is cancelled again.
    const resume = spawnCli(['experiment', 'resume', id, '--project', project, '--concurrency', '1']);
    const again = await fitUnderWay(project, running);
    expect(again, resume.err()).not.toBeNull();
    process.kill(-resume.pid, 'SIGINT');
    expect(await resume.exited, resume.err()).toBe(130);
    const rout = resume.out();
    const rerr = resume.err();
    expect(rout.trimEnd().split('\n').at(-1)).toBe(`Resume with \`nmlab experiment resume ${id} --project ${project}\`: it runs the study's 3 unfinished jobs.`);
    expect(rout + rerr).not.toMatch(/retry/i);
    const requeued = JSON.parse(await readFile(join(project, 'experiments', id, 'queue.json'), 'utf8'));
    expect(requeued.entries.map((e: { state: string }) => e.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(JSON.parse(await readFile(join(project, 'runs', again!, 'status.json'), 'utf8')).status).toBe('cancelled');
    expect(await readdir(join(project, 'experiments', id))).not.toContain('lock.json');
  }, 180_000);
});

describe('nextSteps (the end of the run/resume report)', () => {
  const counts = (c: Partial<Record<'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted', number>>) => ({ pending: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, interrupted: 0, ...c });
  it('after Ctrl-C (cancelled and pending, none failed): resume only', () => {
    expect(nextSteps({ id: 's1', counts: counts({ succeeded: 2, cancelled: 3, pending: 1 }) }, '/p')).toBe('Resume with `nmlab experiment resume s1 --project /p`: it runs the study\'s 4 unfinished jobs.\n');
    expect(nextSteps({ id: 's1', counts: counts({ interrupted: 1 }) }, '/p')).toBe('Resume with `nmlab experiment resume s1 --project /p`: it runs the study\'s 1 unfinished job.\n');
  });
  it('with a failed job: retry only (it re-runs the failed jobs and the ones blocked behind them)', () => {
    expect(nextSteps({ id: 's1', counts: counts({ failed: 1, cancelled: 2 }) }, '/p')).toBe("Retry with `nmlab experiment retry s1 --project /p` (the failed jobs and those not run); each run's log is in runs/<run>/log.txt.\n");
  });
  it('nothing when every job succeeded', () => {
    expect(nextSteps({ id: 's1', counts: counts({ succeeded: 5 }) }, '/p')).toBe('');
  });
});
