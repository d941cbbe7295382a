/** `nmlab tune` through the command object: the JSON contract scripts rely on, and runs saved in a project. */
import { describe, it, expect } from 'vitest';
import { mkdtemp, writeFile, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tuneCommand } from '../../src/cli/commands/tune';
import { TuneParams, TuneRunResult, tuneDefaults, tuneParamFields } from '../../src/shared/contract/tuning';

const dir = fileURLToPath(new URL('../fixtures/tuning/', import.meta.url));

async function tune(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const args = parseArgs({ args: argv, options: tuneCommand.options, strict: true });
  const code = await tuneCommand.run(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const files = ['--train-features', dir + 'lp_train_x.npy', '--train-labels', dir + 'lp_train_y.npy', '--test-features', dir + 'lp_test_x.npy', '--test-labels', dir + 'lp_test_y.npy'];

describe('nmlab tune', () => {
  it('--json prints { runId, runDir, result } with a result in the TuneRunResult shape', async () => {
    const r = await tune([...files, '--method', 'lp', '--epochs', '30', '--seed', '1', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.runId).toBeNull();
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

  it('--project saves the run: config, per-step loss terms, result, succeeded', async () => {
    const project = await mkdtemp(join(tmpdir(), 'nmlab-tune-'));
    await writeFile(join(project, 'nmlab.json'), '{}');
    const r = await tune([...files, '--method', 'nmtune', '--preset', 'reference', '--epochs', '2', '--fraction', '0.5', '--terms-cov', '0.05', '--project', project, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    // one flag of a nested object overrides that key only; the preset's other weights stay
    expect(j.result.params).toMatchObject({ method: 'nmtune', preset: 'reference', terms: { mse: 1, cov: 0.05, svd: 0.001, svdTopK: 5 } });
    expect(j.result.trainRows).toBe(250);
    const [id] = await readdir(join(project, 'runs'));
    expect(id).toBe(j.runId);
    const runDir = join(project, 'runs', id);
    expect(JSON.parse(await readFile(join(runDir, 'status.json'), 'utf8')).status).toBe('succeeded');
    const stored = TuneRunResult.parse(JSON.parse(await readFile(join(runDir, 'result.json'), 'utf8')));
    expect(stored).toEqual(j.result);
    expect(JSON.parse(await readFile(join(runDir, 'config.json'), 'utf8'))).toMatchObject({ kind: 'tune', method: 'nmtune', preset: 'reference' });
    const points = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const loss = points.filter((p) => p.series === 'loss');
    expect(loss.length).toBe(2 * 4); // 250 rows, reference batch 64 → 4 steps per epoch
    expect(Object.keys(loss[0].values).sort()).toEqual(['ce', 'cov', 'lr', 'mse', 'svd', 'total']);
  });

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
