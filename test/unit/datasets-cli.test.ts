import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from 'node:util';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy } from '../../src/core/arrays/npy';
import { encodePng } from '../../src/core/images/decode';
import { DatasetManifest, DatasetSummary } from '../../src/shared/contract/datasets';
import { NmlabError } from '../../src/shared/errors';
import { UsageError, type Command } from '../../src/cli/command';
import { datasetCommand } from '../../src/cli/commands/dataset';
import { featuresCommand } from '../../src/cli/commands/features';

// Runs the `dataset` and `features` verbs in-process, with the same argument parsing and
// error-to-exit-code mapping as src/cli/main.ts (the built binary is covered by test/integration/cli.test.ts).
const root = join(__dirname, '..', '..');
let tmp: string;
let project: string;
const commands: Record<string, Command> = { dataset: datasetCommand, features: featuresCommand };

async function nmlab(verb: string, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const io = { out: (t: string) => (stdout += t), err: (t: string) => (stderr += t) };
  const cmd = commands[verb];
  let code: number;
  try {
    code = await cmd.run(parseArgs({ args, options: cmd.options, allowPositionals: cmd.allowPositionals ?? false, strict: true }), io);
  } catch (err) {
    if (err instanceof UsageError) code = 2;
    else if (err instanceof NmlabError) code = 1;
    else throw err;
    stderr += (err as Error).message;
  }
  return { code, stdout, stderr };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-dscli-'));
  project = join(tmp, 'proj');
  await mkdir(join(project, 'datasets'), { recursive: true });
  const now = new Date().toISOString();
  await writeFile(join(project, 'nmlab.json'), JSON.stringify({ schemaVersion: 1, name: 'p', createdAt: now, updatedAt: now, app: { name: 'nmlab', version: '0.1.0' } }));
  for (const cls of ['a', 'b']) {
    await mkdir(join(tmp, 'imgs', cls), { recursive: true });
    for (let i = 0; i < 6; i++) {
      const data = Uint8Array.from({ length: 16 * 16 }, (_, k) => (k * (i + 1) + (cls === 'b' ? 128 : 0)) % 256);
      await writeFile(join(tmp, 'imgs', cls, `${i}.png`), encodePng({ height: 16, width: 16, channels: 1, data }));
    }
  }
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('nmlab dataset / features', () => {
  it('imports, lists, adds noise and rejects a non-project', async () => {
    const imp = await nmlab('dataset', 'import', '--project', project, '--images', join(tmp, 'imgs'), '--name', 'Tiny', '--test-fraction', '0.5', '--seed', '1', '--json');
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    const m = DatasetManifest.parse(JSON.parse(imp.stdout));
    expect(m).toMatchObject({ id: 'tiny', count: 12, classes: ['a', 'b'], split: { train: 6, test: 6 } });
    const noisy = DatasetManifest.parse(JSON.parse((await nmlab('dataset', 'noise', '--project', project, '--dataset', 'tiny', '--type', 'symmetric', '--ratio', '0.5', '--seed', '3', '--json')).stdout));
    expect(noisy.derived).toMatchObject({ op: 'noise', parent: 'tiny', noise: { flippedCount: 3, splits: ['train'] } });
    const list = await nmlab('dataset', 'list', '--project', project, '--json');
    expect(DatasetSummary.array().parse(JSON.parse(list.stdout)).map((d) => [d.id, d.parent])).toEqual([
      ['tiny', null],
      [noisy.id, 'tiny'],
    ]);
    const bad = await nmlab('dataset', 'list', '--project', tmp);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/nmlab\.json/);
  });

  it('extracts features from an image folder and reports a missing output', async () => {
    const model = join(root, 'test', 'fixtures', 'onnx', 'tiny_resnet.onnx');
    const out = join(tmp, 'f.npy');
    const r = await nmlab('features', '--backbone', model, '--images', join(tmp, 'imgs'), '--mean', '0.5', '--std', '0.25', '--out', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ count: 12, featureDim: 16, output: 'features', preprocess: { inputSize: [1, 16, 16], mean: [0.5], std: [0.25] } });
    expect(j.files[0]).toBe(join('a', '0.png'));
    expect((await readNpy(out)).shape).toEqual([12, 16]);
    const miss = await nmlab('features', '--backbone', model, '--images', join(tmp, 'imgs'), '--output', 'pool', '--out', join(tmp, 'g.npy'));
    expect(miss.code).toBe(1);
    expect(miss.stderr).toMatch(/has no output "pool"; its outputs are "features", "logits"/);
    const usage = await nmlab('features', '--backbone', model, '--out', join(tmp, 'g.npy'));
    expect(usage.code).toBe(2);
  });
});
