/**
 * `nmlab pretrain` in-process: IDX files in, a backbone folder (or project backbones/<id>/)
 * and one JSON report out; bad flags are usage errors; an existing backbone is not replaced
 * without --force.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pretrainCommand } from '../../src/cli/commands/pretrain';
import { UsageError } from '../../src/cli/command';
import { encodeIdxUint8 } from '../../src/core/datasets/idx';
import { ProjectService } from '../../src/core/projects';

let root = '';
let images = '';
let labels = '';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const { values, positionals } = parseArgs({ args: argv, options: pretrainCommand.options, allowPositionals: false, strict: true });
  let out = '';
  let err = '';
  const code = await pretrainCommand.run({ values, positionals }, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

beforeAll(async () => {
  process.env.NMLAB_TF_BACKEND = 'wasm';
  root = await mkdtemp(join(tmpdir(), 'nmlab-pretrain-cli-'));
  const n = 48;
  const px = new Uint8Array(n * 100);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    for (let r = 0; r < 10; r++) for (let c = 0; c < 10; c++) px[i * 100 + r * 10 + c] = r >= 3 * y[i] && r < 3 * y[i] + 3 ? 220 : (i + r * 3 + c * 7) % 50;
  }
  images = join(root, 'imgs.idx.gz');
  labels = join(root, 'labels.idx.gz');
  await writeFile(images, encodeIdxUint8([n, 10, 10], px));
  await writeFile(labels, encodeIdxUint8([n], y));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const small = ['--epochs', '1', '--batch-size', '8', '--widths', '4,8', '--stem-width', '4'];

describe('nmlab pretrain', () => {
  it('writes a backbone folder and prints the JSON report', async () => {
    const out = join(root, 'bb');
    const r = await cli(['--idx-images', images, '--idx-labels', labels, '--ratio', '0.25', '--seed', '2', '--limit', '40', '--out', out, '--json', ...small]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as Record<string, unknown> & { provenance: Record<string, unknown>; accuracy: Record<string, number> };
    expect(report.id).toBe('nmlab-cnn.g25');
    expect(report.backbone).toBe(out);
    expect(report.featureDim).toBe(8);
    expect(report.backend).toMatch(/^onnxruntime(, NCHWc convolutions)?$/);
    expect(report.provenance.flippedCount).toBe(10); // round(0.25 · 40)
    expect(report.provenance.trainCount).toBe(40);
    expect(report.accuracy.trainNoisyLabels).toBeGreaterThanOrEqual(0);
    expect(r.err).toMatch(/epoch 1\/1/);
    const manifest = JSON.parse(await readFile(join(out, 'backbone.json'), 'utf8')) as { sha256: string; preprocess: { inputSize: number[] } };
    expect(manifest.sha256).toBe(report.sha256);
    expect(manifest.preprocess.inputSize).toEqual([1, 10, 10]);
  });

  it('refuses to replace a backbone without --force', async () => {
    const out = join(root, 'bb');
    await expect(cli(['--idx-images', images, '--idx-labels', labels, '--out', out, ...small])).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    const r = await cli(['--idx-images', images, '--idx-labels', labels, '--out', out, '--force', ...small]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote .*nmlab-cnn\.g00|wrote .*bb/);
  });

  it('stores into a project as backbones/<id>/', async () => {
    const project = join(root, 'proj');
    await new ProjectService({ home: join(root, 'home') }).create(project, 'cli');
    const r = await cli(['--idx-images', images, '--idx-labels', labels, '--ratio', '0.1', '--project', project, '--json', ...small]);
    const report = JSON.parse(r.out) as { backbone: string };
    expect(report.backbone).toBe(join(project, 'backbones', 'nmlab-cnn.g10'));
    await expect(cli(['--idx-images', images, '--idx-labels', labels, '--project', join(root, 'not-a-project'), ...small])).rejects.toMatchObject({ code: expect.stringMatching(/BAD_PROJECT|NOT_FOUND/) });
  });

  it('rejects bad flags with usage errors', async () => {
    await expect(cli(['--idx-images', images, '--idx-labels', labels, '--ratio', '1.5', '--out', 'x'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(['--idx-images', images, '--idx-labels', labels])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(['--idx-images', images, '--idx-labels', labels, '--out', 'a', '--project', 'b'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(['--idx-images', images, '--idx-labels', labels, '--out', 'a', '--noise', 'pairswap'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(['--idx-images', images, '--idx-labels', labels, '--out', 'a', '--epochs', '0'])).rejects.toBeInstanceOf(UsageError);
  });
});
