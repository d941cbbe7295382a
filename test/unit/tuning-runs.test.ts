/**
 * The run store (src/core/runs): layout, status transitions, interrupted detection, id order;
 * and tuning runs written by runTuneFit (src/core/jobs/kinds/tune.ts).
 */
import { describe, it, expect, beforeEach, beforeAll } from 'vitest';
import { mkdtemp, readFile, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { RunStore, newRunId, STALE_MS, type RunStatusRecord } from '../../src/core/runs/store';
import { runTuneFit, run as tuneJob } from '../../src/core/jobs/kinds/tune';
import { createRunFolder } from '../../src/core/runs/files';
import { copyFile, mkdir } from 'node:fs/promises';
import { makeTuner } from '../../src/core/tuning/tuner';
import { loadFeatureSet } from '../../src/core/tuning/load';
import type { FeatureSet } from '../../src/core/tuning/data';
import { initTfBackend } from '../../src/core/tf/backend';
import { TuneRunResult, type TuneOverrides } from '../../src/shared/contract/tuning';
import { singularValuesOf } from '../../src/core/tuning/zSpectrum';
import { spectrumOfMatrix } from '../../src/core/spectrum/spectrum';

const fixtures = fileURLToPath(new URL('../fixtures/tuning/', import.meta.url));

let project: string;
beforeEach(async () => {
  project = await mkdtemp(join(tmpdir(), 'nmlab-runs-'));
  await writeFile(join(project, 'nmlab.json'), '{}');
});

describe('RunStore', () => {
  it('refuses a folder without nmlab.json', async () => {
    const bare = await mkdtemp(join(tmpdir(), 'nmlab-bare-'));
    expect(() => new RunStore(bare)).toThrow(/not an NMLab project \(no nmlab\.json\)/);
  });

  it('writes config, metrics, log and result; succeeded only with a result', async () => {
    const store = new RunStore(project);
    const run = await store.create('tune', { params: { lr: 0.01 } });
    expect((await store.list())[0]).toMatchObject({ id: run.id, kind: 'tune', status: 'running' });
    run.metric('loss', 1, { ce: 2.5 });
    run.metric('loss', 2, { ce: 2.0 });
    await run.log('hello');
    await run.succeed({ accuracy: 0.9 });
    const files = (await readdir(run.dir)).sort();
    expect(files).toEqual(['config.json', 'log.txt', 'metrics.jsonl', 'result.json', 'status.json']);
    const lines = (await readFile(join(run.dir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { series: 'loss', step: 1, values: { ce: 2.5 } },
      { series: 'loss', step: 2, values: { ce: 2.0 } },
    ]);
    expect(await readFile(join(run.dir, 'log.txt'), 'utf8')).toMatch(/Z hello\n$/);
    const config = JSON.parse(await readFile(join(run.dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ id: run.id, kind: 'tune', params: { lr: 0.01 } });
    const [listed] = await store.list();
    expect(listed.status).toBe('succeeded');
    expect(listed.stored?.endedAt).not.toBeNull();
    expect(await store.result(run.id)).toEqual({ accuracy: 0.9 });
  });

  it('records failures and cancellations with the reason', async () => {
    const store = new RunStore(project);
    const a = await store.create('tune', {});
    await a.fail(new Error('loss became NaN'));
    const b = await store.create('tune', {});
    await b.fail('stopped by user', 'cancelled');
    const list = await store.list();
    expect(list.map((r) => [r.status, r.stored?.error])).toEqual([
      ['failed', 'loss became NaN'],
      ['cancelled', 'stopped by user'],
    ]);
    expect(await store.result(a.id)).toBeNull();
  });

  it('lists a running run whose process died as interrupted (same host: pid; other host: heartbeat)', async () => {
    const store = new RunStore(project);
    const run = await store.create('tune', {});
    const statusFile = join(run.dir, 'status.json');
    const rec = JSON.parse(await readFile(statusFile, 'utf8')) as RunStatusRecord;
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(child.stdout.toString());
    await writeFile(statusFile, JSON.stringify({ ...rec, pid: deadPid }));
    expect((await store.list())[0].status).toBe('interrupted');
    // another machine, fresh heartbeat: still running; stale heartbeat: interrupted
    await writeFile(statusFile, JSON.stringify({ ...rec, host: 'elsewhere', updatedAt: new Date().toISOString() }));
    expect((await store.list())[0].status).toBe('running');
    await writeFile(statusFile, JSON.stringify({ ...rec, host: 'elsewhere', updatedAt: new Date(Date.now() - STALE_MS - 1000).toISOString() }));
    expect((await store.list())[0].status).toBe('interrupted');
    // listing never rewrites the file
    expect(JSON.parse(await readFile(statusFile, 'utf8')).status).toBe('running');
  });

  it('run ids sort by creation time', () => {
    const t = Date.UTC(2026, 10, 27, 20, 7, 3, 5);
    const ids = [newRunId(new Date(t + 1000)), newRunId(new Date(t)), newRunId(new Date(t + 1))];
    expect(ids[1]).toMatch(/^20261127-200703-005-[0-9a-f]{6}$/);
    expect([...ids].sort()).toEqual([ids[1], ids[2], ids[0]]);
  });
});

describe('runTuneFit', () => {
  let train: FeatureSet;
  let test: FeatureSet;
  beforeAll(async () => {
    await initTfBackend();
    train = await loadFeatureSet(fixtures + 'lp_train_x.npy', fixtures + 'lp_train_y.npy');
    test = await loadFeatureSet(fixtures + 'lp_test_x.npy', fixtures + 'lp_test_y.npy');
  });

  const points = async (dir: string) =>
    (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { series: string; step: number; values: Record<string, number> });

  // With a constant learning rate, epoch k of a 3-epoch fit is the final model of a k-epoch fit
  // (same seed: same init, same batches), which evaluate() scores on the test set independently.
  for (const method of ['mlp', 'nmtune'] as const)
    it(`${method}: the per-epoch accuracy in metrics.jsonl is that epoch's model's test accuracy`, async () => {
      const params: TuneOverrides & { method: typeof method } = { method, epochs: 3, schedule: 'constant', lr: 0.003, batchSize: 100, seed: 2 };
      const { runDir, result } = await runTuneFit(params, { train, test, targets: [] }, { run: { projectDir: project } });
      expect(result.engine).toBe('ort');
      const epochs = (await points(runDir!)).filter((p) => p.series === 'epoch');
      expect(epochs.map((p) => p.step)).toEqual([1, 2, 3]);
      for (let k = 1; k <= 3; k++) {
        const est = await makeTuner({ ...params, epochs: k, numClasses: 5 }).fit(train);
        const m = est.evaluate(test);
        est.dispose();
        expect(epochs[k - 1].values.accuracy).toBe(m.accuracy);
        expect(epochs[k - 1].values.macroF1).toBe(m.macroF1);
      }
      expect(epochs[2].values.accuracy).toBe(result.test!.accuracy);
      // the epochs' models differ: the first epoch is far from the last (the old bug logged the initial model every epoch)
      expect(epochs[0].values.accuracy).toBeGreaterThan(0.5);
    });

  it('writes result.json in the TuneRunResult shape with every OOD target, and succeeded after it', async () => {
    const shifted: FeatureSet = { ...test, features: test.features.map((v, i) => v + (i % 7 === 0 ? 3 : 0)), name: 'shifted' };
    const { runId, runDir, result } = await runTuneFit({ method: 'lp', epochs: 5 }, { train, test, targets: [{ name: 'shifted', set: shifted }, { name: 'same', set: test }] }, { run: { projectDir: project, config: { note: 'x' } } });
    const stored = TuneRunResult.parse(JSON.parse(await readFile(join(runDir!, 'result.json'), 'utf8')));
    expect(stored).toEqual(result);
    expect(result.targets.map((t) => t.name)).toEqual(['shifted', 'same']);
    expect(result.targets[1].accuracy).toBe(result.test!.accuracy);
    expect(result.oodAccuracy).toBeCloseTo((result.targets[0].accuracy + result.targets[1].accuracy) / 2, 12);
    // LP: Z = F, so Z's and F's spectra agree, after the reference preprocessing and raw
    expect(result.test!.sve).toBeCloseTo(result.test!.backboneSve!, 10);
    expect(result.test!.sveRaw).toBeCloseTo(result.test!.backboneSveRaw!, 10);
    expect(result.test!.sve).not.toBeCloseTo(result.test!.sveRaw!, 3);
    expect(JSON.parse(await readFile(join(runDir!, 'config.json'), 'utf8'))).toMatchObject({ kind: 'tune', method: 'lp', note: 'x', params: { method: 'lp', epochs: 5 } });
    expect(JSON.parse(await readFile(join(runDir!, 'status.json'), 'utf8')).status).toBe('succeeded');
    expect((await new RunStore(project).list()).map((r) => r.id)).toEqual([runId]);
  });

  it('spectra of Z and F use the spectrum module preprocessing: the same singular values as spectrumOfMatrix', async () => {
    for (const preprocess of ['reference', 'none'] as const) {
      const ours = singularValuesOf(test.features, test.rows, test.dim, preprocess);
      const theirs = await spectrumOfMatrix(test.features, test.rows, test.dim, 'test', { preprocess, gram: 'js' });
      expect(ours.length).toBe(theirs.singularValues.length);
      ours.forEach((v, i) => expect(Math.abs(v - theirs.singularValues[i])).toBeLessThan(1e-9 * ours[0]));
    }
  });

  it('downstream noise η: other-class changes exactly round(ηN) labels, any-class about η(C−1)/C; the realised rate is reported', async () => {
    const fit = (semantics: 'any-class' | 'other-class') => runTuneFit({ method: 'lp', epochs: 1, downstreamNoise: { eta: 0.4, semantics, seed: 9 } }, { train, test, targets: [] });
    const other = (await fit('other-class')).result.downstreamNoise;
    expect(other).toMatchObject({ eta: 0.4, semantics: 'other-class', seed: 9, rows: 500, flipped: 200, realisedFlipRate: 0.4 });
    // the realised transition counts, checked against the diagonal: off-diagonal mass = flips
    const offDiagonal = (t: number[][]) => t.reduce((s, row, i) => s + row.reduce((a, v, j) => a + (i === j ? 0 : v), 0), 0);
    expect(offDiagonal(other.transitionCounts!)).toBe(200);
    const any = (await fit('any-class')).result.downstreamNoise;
    expect(offDiagonal(any.transitionCounts!)).toBe(any.flipped);
    // 200 picked, each keeps its label with probability 1/5: 160 ± 5.7 (binomial sd) change
    expect(any.flipped).toBeGreaterThan(160 - 4 * 5.7);
    expect(any.flipped).toBeLessThan(200);
    expect(any.realisedFlipRate).toBe(any.flipped / 500);
  });

  it('writes into a Run the caller started (a resumable stage) and ends it succeeded', async () => {
    const run = await new RunStore(project).create('demo.tune', { stageKey: 'k1' });
    const { runId, result } = await runTuneFit({ method: 'lp', epochs: 2 }, { train, test, targets: [] }, { run });
    expect(runId).toBe(run.id);
    expect(TuneRunResult.parse(JSON.parse(await readFile(join(run.dir, 'result.json'), 'utf8')))).toEqual(result);
    expect(JSON.parse(await readFile(join(run.dir, 'config.json'), 'utf8'))).toMatchObject({ kind: 'demo.tune', stageKey: 'k1' });
    const [listed] = await new RunStore(project).list();
    expect(listed.status).toBe('succeeded');
    expect((await points(run.dir)).filter((p) => p.series === 'epoch').length).toBe(2);
  });

  it("the queue's tune job fills the run the queue created, with progress and live metrics", async () => {
    await mkdir(join(project, 'features'));
    for (const f of ['lp_train_x', 'lp_train_y', 'lp_test_x', 'lp_test_y']) await copyFile(fixtures + f + '.npy', join(project, 'features', f + '.npy'));
    const runId = newRunId();
    await createRunFolder(project, { id: runId, kind: 'tune', createdAt: new Date().toISOString() });
    const src = (x: string, y: string) => ({ features: `features/${x}.npy`, labels: `features/${y}.npy` });
    const job = {
      key: 'b/t/mlp/f1/s0', index: 0, backbone: 'b', gamma: null, task: 't', taskType: 'ood' as const, method: 'mlp', baseMethod: 'mlp' as const,
      preset: 'paper' as const, fraction: 1, seed: 0, params: { epochs: 2 },
      train: src('lp_train_x', 'lp_train_y'), test: src('lp_test_x', 'lp_test_y'), targets: [{ name: 'again', ...src('lp_test_x', 'lp_test_y') }],
    };
    const progress: string[] = [];
    const series = new Set<string>();
    const out = (await tuneJob({ kind: 'tune', projectDir: project, runId, experimentId: null, attempt: 1, job }, {
      jobId: 'j1',
      signal: new AbortController().signal,
      progress: (_d, _t, m) => progress.push(m ?? ''),
      metric: (name) => series.add(name),
      log: () => undefined,
    })) as { runId: string; accuracy: number; oodAccuracy: number };
    const result = TuneRunResult.parse(JSON.parse(await readFile(join(project, 'runs', runId, 'result.json'), 'utf8')));
    expect(out).toEqual({ runId, accuracy: result.test!.accuracy, oodAccuracy: result.targets[0].accuracy });
    expect(result.params).toMatchObject({ method: 'mlp', epochs: 2, numClasses: 5 });
    expect(progress).toContain('epoch 2 of 2');
    expect(progress.at(-1)).toBe('done');
    expect([...series].sort()).toEqual(['backboneSpectrum', 'epoch', 'loss', 'spectrum']);
    expect((await new RunStore(project).list()).find((r) => r.id === runId)?.status).toBe('succeeded');
  });

  it('warns, in the log, about test classes the training labels never use (naming both label files)', async () => {
    const lines: string[] = [];
    const idx = Array.from(train.labels.keys()).filter((i) => train.labels[i] !== 4);
    const trainNo4: FeatureSet = {
      ...train,
      rows: idx.length,
      features: Float32Array.from(idx.flatMap((i) => Array.from(train.features.subarray(i * train.dim, (i + 1) * train.dim)))),
      labels: Int32Array.from(idx, (i) => train.labels[i]),
    };
    const { runDir } = await runTuneFit({ method: 'lp', epochs: 1 }, { train: trainNo4, test, targets: [] }, { run: { projectDir: project }, onLog: (l) => lines.push(l) });
    const n4 = test.labels.filter((y) => y === 4).length;
    const warning = `warning: ${test.labelsName}: ${n4} test row(s) have class(es) 4 that never occur in ${train.labelsName}; no model trained on it can predict them`;
    expect(lines).toContain(warning);
    expect(await readFile(join(runDir!, 'log.txt'), 'utf8')).toContain(warning);
  });

  it('refuses a fit with nothing to evaluate on, or a bad set, before any run folder exists', async () => {
    await expect(runTuneFit({ method: 'lp' }, { train, test: null, targets: [] }, { run: { projectDir: project } })).rejects.toThrow(/no test set and no OOD target/);
    const bad: FeatureSet = { ...test, name: 'bad.npy', features: test.features.map((v, i) => (i === 7 ? NaN : v)) };
    await expect(runTuneFit({ method: 'lp' }, { train, test: bad, targets: [] }, { run: { projectDir: project } })).rejects.toThrow(/bad\.npy: feature row 0, column 7 is NaN/);
    expect(await new RunStore(project).list()).toEqual([]);
  });

  it('a cancelled fit marks its run cancelled and throws CANCELLED', async () => {
    const ctl = new AbortController();
    await expect(
      runTuneFit({ method: 'mlp', epochs: 5 }, { train, test, targets: [] }, { run: { projectDir: project }, signal: ctl.signal, onStep: (e) => e.step === 3 && ctl.abort() }),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
    const [r] = await new RunStore(project).list();
    expect(r.status).toBe('cancelled');
  });
});
