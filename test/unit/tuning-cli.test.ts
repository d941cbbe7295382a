/** `nmlab tune` through the command object: the JSON contract scripts rely on, and the one-job study `--project` makes. */
import { describe, it, expect } from 'vitest';
import { mkdtemp, writeFile, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import type { Command } from '../../src/cli/command';
import { experimentCommand } from '../../src/cli/commands/experiment';
import { tuneCommand } from '../../src/cli/commands/tune';
import { TuneParams, TuneRunResult, tuneDefaults, tuneParamFields } from '../../src/shared/contract/tuning';

const dir = fileURLToPath(new URL('../fixtures/tuning/', import.meta.url));

async function cli(command: Command, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const args = parseArgs({ args: argv, options: command.options, allowPositionals: command.allowPositionals ?? false, strict: true });
  const code = await command.run(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const tune = (argv: string[]) => cli(tuneCommand, argv);

const files = ['--train-features', dir + 'lp_train_x.npy', '--train-labels', dir + 'lp_train_y.npy', '--test-features', dir + 'lp_test_x.npy', '--test-labels', dir + 'lp_test_y.npy'];

/** A new project folder, empty but for its `nmlab.json`. */
async function newProject(): Promise<string> {
  const project = await mkdtemp(join(tmpdir(), 'nmlab-tune-'));
  await writeFile(join(project, 'nmlab.json'), '{}');
  return project;
}

/** `nmlab tune <flags> --project <a new project> --json`, which must exit 0: the project and what it printed, parsed. */
async function tuneInNewProject(flags: string[]) {
  const project = await newProject();
  const r = await tune([...flags, '--project', project, '--json']);
  expect(r.code).toBe(0);
  return { project, j: JSON.parse(r.out) };
}

describe('nmlab tune', () => {
  it('--json prints { runId, runDir, result } with a result in the TuneRunResult shape', async () => {
    const r = await tune([...files, '--method', 'lp', '--epochs', '30', '--seed', '1', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.runId).toBeNull();
    expect(j.studyId).toBeNull();
    const res = TuneRunResult.parse(j.result);
    const meta = JSON.parse(await readFile(dir + 'lp_meta.json', 'utf8'));
    expect(Math.abs(res.test!.accuracy - meta.sklearnAccuracy)).toBeLessThanOrEqual(0.01);
    expect(res.test!.macroF1).toBeGreaterThan(0.8);
    expect(res.test!.macroF1).toBeLessThanOrEqual(1);
    expect(typeof res.backend).toBe('string');
    expect(res.seconds).toBeGreaterThan(0);
    expect(Number.isFinite(res.test!.sve) && Number.isFinite(res.test!.lsvrRaw!)).toBe(true);
    expect(res.params).toMatchObject({ method: 'lp', epochs: 30, seed: 1, lr: 0.01, weightDecay: 0, fraction: 1, numClasses: 5 });
    expect(r.err).toBe('');
  });

  it('--project is a one-job study on the project queue: one tune job, its result the direct fit\'s, listed by experiment list and compare', async () => {
    const flags = [...files, '--method', 'nmtune', '--preset', 'reference', '--epochs', '2', '--fraction', '0.5', '--terms-cov', '0.05', '--seed', '3'];
    const { project, j } = await tuneInNewProject(flags);
    // one flag of a nested object overrides that key only; the preset's other weights stay
    expect(j.result.params).toMatchObject({ method: 'nmtune', preset: 'reference', seed: 3, fraction: 0.5, terms: { mse: 1, cov: 0.05, svd: 0.001, svdTopK: 5 } });
    expect(j.result.trainRows).toBe(250);

    // The study: one tune job and the comparison every study ends with, both succeeded.
    const study = JSON.parse(await readFile(join(project, 'experiments', j.studyId, 'experiment.json'), 'utf8'));
    expect(study.jobs.map((x: { stage: string }) => x.stage)).toEqual(['tune', 'aggregate']);
    expect(study.jobs[0]).toMatchObject({ method: 'nmtune', preset: 'reference', seed: 3, fraction: 0.5, params: { epochs: 2, terms: { cov: 0.05 } } });
    // Files from outside the project are copied in, by content.
    expect(study.jobs[0].train.features).toMatch(/^embeddings\/lp_train_x\.[0-9a-f]{16}\.npy$/);
    expect(await readFile(join(project, study.jobs[0].train.features))).toEqual(await readFile(dir + 'lp_train_x.npy'));
    const queue = JSON.parse(await readFile(join(project, 'experiments', j.studyId, 'queue.json'), 'utf8'));
    expect(queue.entries.map((e: { state: string; runId: string }) => [e.state, e.runId])).toEqual([
      ['succeeded', j.runId],
      ['succeeded', expect.any(String)],
    ]);

    // The run the job wrote: result.json in the TuneRunResult shape, what was printed.
    expect(j.runDir).toBe(join(project, 'runs', j.runId));
    expect(JSON.parse(await readFile(join(j.runDir, 'status.json'), 'utf8')).status).toBe('succeeded');
    const stored = TuneRunResult.parse(JSON.parse(await readFile(join(j.runDir, 'result.json'), 'utf8')));
    expect(stored).toEqual(j.result);
    const points = (await readFile(join(j.runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const loss = points.filter((p) => p.series === 'loss');
    expect(loss.length).toBe(2 * 4); // 250 rows, reference batch 64 → 4 steps per epoch
    expect(Object.keys(loss[0].values).sort()).toEqual(['ce', 'cov', 'lr', 'mse', 'svd', 'total']);

    // The fit is deterministic: the same flags here, in this process, give the same numbers.
    const direct = JSON.parse((await tune([...flags, '--json'])).out);
    expect(direct.runId).toBeNull();
    expect(stored.test).toEqual(direct.result.test);
    expect(stored.singularValues).toEqual(direct.result.singularValues);

    const list = await cli(experimentCommand, ['list', '--project', project, '--json']);
    expect(JSON.parse(list.out).map((x: { id: string }) => x.id)).toEqual([j.studyId]);
    const compare = JSON.parse((await cli(experimentCommand, ['compare', j.studyId, '--project', project, '--json'])).out);
    expect(compare).toMatchObject({ experimentId: j.studyId, finished: 1, total: 1 });
    expect(compare.rows).toHaveLength(1);
    expect(compare.rows[0]).toMatchObject({ method: 'nmtune-reference', fraction: 0.5 });
    expect(compare.rows[0].accuracy.mean).toBe(stored.test!.accuracy);
  }, 120_000);

  it('--project: Ctrl-C (SIGINT to the whole process group, the worker too) cancels the study job on the queue and exits 130, the run saved as cancelled', async () => {
    const project = await newProject();
    // Detached: the CLI leads its own process group, as a terminal's foreground job does.
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url)), 'tune', ...files, '--method', 'nmtune', '--epochs', '400', '--project', project], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let err = '';
    let sent = false;
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      // A few epochs in (the worker runs), Ctrl-C: SIGINT to every process of the group, as a terminal sends it.
      if (/epoch 3\//.test(err) && !sent) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    });
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(err).toMatch(/tuning nmtune cancelled at step \d+ of 1600 .*; study (\S+): `nmlab experiment resume \1 --project/);
    const [id] = await readdir(join(project, 'experiments'));
    const queue = JSON.parse(await readFile(join(project, 'experiments', id, 'queue.json'), 'utf8'));
    expect(queue.entries.map((e: { state: string }) => e.state)).toEqual(['cancelled', 'cancelled']);
    expect(JSON.parse(await readFile(join(project, 'runs', queue.entries[0].runId, 'status.json'), 'utf8')).status).toBe('cancelled');
    // The queue let go of the study.
    expect(await readdir(join(project, 'experiments', id))).not.toContain('lock.json');
  }, 120_000);

  it('--project with downstream noise: η is the study\'s η axis, so the job key, the compare column and the result say η 20 %, and the fit equals the direct one', async () => {
    const flags = [...files, '--method', 'lp', '--epochs', '5', '--seed', '2', '--downstream-noise-eta', '0.2', '--downstream-noise-semantics', 'other-class', '--downstream-noise-seed', '7'];
    const { project, j } = await tuneInNewProject(flags);
    const noise = j.result.downstreamNoise;
    // other-class: every drawn label changes, so exactly round(0.2 · 500) of the 500 rows flip.
    expect(noise).toMatchObject({ eta: 0.2, semantics: 'other-class', seed: 7, rows: 500, flipped: 100, realisedFlipRate: 0.2 });
    expect(j.result.params.downstreamNoise).toEqual({ eta: 0.2, semantics: 'other-class', seed: 7 });

    // The study: η on its axis (spec and job), the job key and the column label carry 20 %.
    const study = JSON.parse(await readFile(join(project, 'experiments', j.studyId, 'experiment.json'), 'utf8'));
    expect(study.spec).toMatchObject({ eta: [0.2], etaNoise: { semantics: 'other-class', seed: 7 } });
    expect(study.spec.methods[0].params.downstreamNoise).toBeUndefined();
    expect(study.jobs[0]).toMatchObject({ key: 'tune/embeddings/fit/lp/f1/s2/eta20', label: 'lp-eta20', eta: 0.2, params: { downstreamNoise: { eta: 0.2, semantics: 'other-class', seed: 7 } } });

    // The same flags without --project: the same draw, the same fit.
    const direct = JSON.parse((await tune([...flags, '--json'])).out).result;
    expect(j.result.downstreamNoise).toEqual(direct.downstreamNoise);
    expect(j.result.test).toEqual(direct.test);
    expect(j.result.params).toEqual(direct.params);

    const compare = JSON.parse((await cli(experimentCommand, ['compare', j.studyId, '--project', project, '--json'])).out);
    expect(compare.rows).toHaveLength(1);
    expect(compare.rows[0]).toMatchObject({ method: 'lp-eta20', fraction: 1 });
    expect(compare.rows[0].accuracy.mean).toBe(direct.test.accuracy);

    // η 0 is no axis: the key and column stay plain, the (inert) semantics kept as given.
    const clean = JSON.parse((await tune([...files, '--method', 'lp', '--epochs', '2', '--downstream-noise-semantics', 'other-class', '--project', project, '--json'])).out);
    const cleanStudy = JSON.parse(await readFile(join(project, 'experiments', clean.studyId, 'experiment.json'), 'utf8'));
    expect(cleanStudy.jobs[0]).toMatchObject({ key: 'tune/embeddings/fit/lp/f1/s0/eta0', label: 'lp', eta: 0 });
    expect(clean.result.downstreamNoise).toMatchObject({ eta: 0, semantics: 'other-class', flipped: 0 });
  }, 120_000);

  it('rejects bad flags as usage errors', async () => {
    await expect(tune([...files, '--method', 'svm'])).rejects.toThrow(/--method: .*"lp"\|"mlp"\|"nmtune"/);
    await expect(tune([...files, '--method', 'lp', '--fraction', '1.5'])).rejects.toThrow(/--fraction: .*<=1/);
    await expect(tune([...files, '--method', 'lp', '--residual', 'yes'])).rejects.toThrow(/--residual must be true or false/);
    expect(tuneCommand.usage).toMatch(/--downstream-noise-semantics <any-class\|other-class>/);
  });
});

describe('tuneParamFields (what the flags and the UI form are built from)', () => {
  it('lists every leaf of TuneParams but method, each described, each accepting the defaults of every method and preset', () => {
    const fields = tuneParamFields();
    const paths = fields.map((f) => f.path.join('.'));
    const leaves = Object.entries(TuneParams.shape).flatMap(([k, s]) => (k === 'method' ? [] : 'shape' in s ? Object.keys(s.shape).map((sub) => `${k}.${sub}`) : [k]));
    expect(paths).toEqual(leaves);
    for (const f of fields) {
      expect(f.description.length).toBeGreaterThan(5);
      for (const [m, p] of [['lp', 'paper'], ['mlp', 'reference'], ['nmtune', 'paper'], ['nmtune', 'reference']] as const) {
        const d = tuneDefaults(m, p) as unknown as Record<string, unknown>;
        const v = f.path.length === 1 ? d[f.path[0]] : (d[f.path[0]] as Record<string, unknown>)[f.path[1]!];
        expect(f.schema.safeParse(v).success).toBe(true);
      }
    }
    expect(fields.find((f) => f.path.join('.') === 'downstreamNoise.seed')).toMatchObject({ kind: 'integer', nullable: true });
    expect(fields.find((f) => f.path.join('.') === 'headInit')).toMatchObject({ kind: 'choice', choices: ['torch-linear', 'kaiming-zero'] });
  });
});
