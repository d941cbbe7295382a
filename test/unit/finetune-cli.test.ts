/** `nmlab finetune` through the command object: the JSON contract, the saved model, uint8 images. */
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { finetuneCommand } from '../../src/cli/commands/finetune';
import { readNpy, writeNpy } from '../../src/core/arrays/npy';
import { loadOrt } from '../../src/core/onnx/providers';
import { FinetuneResult } from '../../src/shared/contract/finetune';

const dir = join(__dirname, '..', 'fixtures', 'finetune');

async function finetune(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const args = parseArgs({ args: argv, options: finetuneCommand.options, strict: true });
  const code = await finetuneCommand.run(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const labels = ['--train-labels', join(dir, 'train_labels.npy'), '--test-labels', join(dir, 'test_labels.npy')];
const floats = ['--train-inputs', join(dir, 'train_inputs.npy'), '--test-inputs', join(dir, 'test_inputs.npy'), ...labels];

describe('nmlab finetune', () => {
  it('--json prints {accuracy, macroF1, method, provider, epochs, seconds}; --save writes the tuned network', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'nmlab-finetune-'));
    const saved = join(tmp, 'tuned.onnx');
    const r = await finetune(['--backbone', join(dir, 'backbone.onnx'), ...floats, '--method', 'lora', '--rank', '2', '--epochs', '2', '--lr', '1e-2', '--batch-size', '32', '--seed', '3', '--save', saved, '--json']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const res = FinetuneResult.parse(JSON.parse(r.out));
    expect(res).toMatchObject({ method: 'lora', epochs: 2, numClasses: 4, featureDim: 16, trainRows: 384, testRows: 400 });
    expect(res.params).toMatchObject({ rank: 2, lr: 1e-2, batchSize: 32, seed: 3, weightDecay: 1e-4 });
    expect(typeof res.provider).toBe('string');
    expect(res.seconds).toBeGreaterThan(0);
    expect(res.adapted.every((a) => a.rank <= 2)).toBe(true);

    // The saved model (LoRA merged) reproduces the reported test accuracy.
    const ort = await loadOrt();
    const s = await ort.InferenceSession.create(new Uint8Array(await readFile(saved)), { executionProviders: ['cpu'] });
    const x = await readNpy(join(dir, 'test_inputs.npy'));
    const y = (await readNpy(join(dir, 'test_labels.npy'))).data as BigInt64Array;
    const logits = (await s.run({ pixels: new ort.Tensor('float32', x.data as Float32Array, x.shape) }))['nmlab.logits'].data as Float32Array;
    let hits = 0;
    for (let i = 0; i < y.length; i++) {
      const row = Array.from(logits.subarray(i * 4, i * 4 + 4));
      if (row.indexOf(Math.max(...row)) === Number(y[i])) hits++;
    }
    expect(hits / y.length).toBeCloseTo(res.accuracy, 10);
  });

  it('uint8 images get the backbone preprocessing (here x/255 from the model input shape), same as feeding that tensor', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'nmlab-finetune-u8-'));
    for (const split of ['train', 'test']) {
      const x = await readNpy(join(dir, `${split}_inputs.npy`));
      const n = x.shape[0];
      const u8 = Uint8Array.from(x.data as Float32Array, (v) => Math.max(0, Math.min(255, Math.round(128 + 60 * v))));
      const f32 = Float32Array.from(u8, (v) => v / 255);
      await writeNpy(join(tmp, `${split}_u8.npy`), { dtype: 'uint8', shape: [n, 16, 16], data: u8 });
      await writeNpy(join(tmp, `${split}_f32.npy`), { dtype: 'float32', shape: [n, 1, 16, 16], data: f32 });
    }
    const run = async (kind: 'u8' | 'f32') =>
      FinetuneResult.parse(
        JSON.parse(
          (await finetune(['--backbone', join(dir, 'backbone.onnx'), '--train-inputs', join(tmp, `train_${kind}.npy`), '--test-inputs', join(tmp, `test_${kind}.npy`), ...labels, '--method', 'ft', '--epochs', '1', '--lr', '3e-3', '--batch-size', '64', '--json'])).out,
        ),
      );
    const [u8, f32] = [await run('u8'), await run('f32')];
    expect(u8.accuracy).toBe(f32.accuracy);
    u8.epochLoss.forEach((l, i) => expect(l).toBeCloseTo(f32.epochLoss[i], 5));
  });

  it('--nmtune paper adds NMTune\'s terms on the features and records the preset', async () => {
    const r = await finetune(['--backbone', join(dir, 'backbone.onnx'), ...floats, '--method', 'ft', '--nmtune', 'paper', '--epochs', '1', '--lr', '3e-3', '--batch-size', '64', '--json']);
    const res = FinetuneResult.parse(JSON.parse(r.out));
    expect(res.params.nmtune).toBe('paper');
    // CE of a 4-class head starts near ln 4; the terms add at most 0.01·(2 + L_COV).
    expect(res.epochLoss[0]).toBeGreaterThan(0.5);
    expect(res.accuracy).toBeGreaterThan(0.25);
  });

  it('rejects a bad method and names what is accepted', async () => {
    await expect(finetune(['--backbone', join(dir, 'backbone.onnx'), ...floats, '--method', 'full'])).rejects.toThrow(/--method must be one of ft, lora, lp/);
  });
});
