/**
 * Reading a tuning run's result.json (src/shared/contract/tuning.ts, src/core/runs/store.ts):
 * a run written by the experiment queue before runTuneFit (test/fixtures/runs/, made by that
 * code; see its README) loads upgraded and is shown by `nmlab runs show`; a current result
 * round-trips through the file and the transport schema; a damaged one is an error naming the
 * file and the problem, while results of other shapes are simply not tuning results.
 */
import { describe, it, expect, beforeAll, beforeEach } from 'vitest';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readRunDetail, readRunSummary, readTuneRunResult } from '../../src/core/runs/store';
import { runTuneFit } from '../../src/core/jobs/kinds/tune';
import { loadFeatureSet } from '../../src/core/tuning/load';
import { initTfBackend } from '../../src/core/tf/backend';
import { runsCommand } from '../../src/cli/commands/runs';
import { RunDetail } from '../../src/shared/contract/experiments';
import { StoredTuneRunResult, TuneRunResult, TuneRunResultFile } from '../../src/shared/contract/tuning';

const LEGACY = 'legacy-exp.j0000.a1';
const legacyDir = fileURLToPath(new URL(`../fixtures/runs/${LEGACY}/`, import.meta.url));
const tuning = fileURLToPath(new URL('../fixtures/tuning/', import.meta.url));

let project: string;
beforeEach(async () => {
  project = await mkdtemp(join(tmpdir(), 'nmlab-results-'));
  await writeFile(join(project, 'nmlab.json'), '{}');
  await cp(legacyDir, join(project, 'runs', LEGACY), { recursive: true });
});

async function show(id: string): Promise<string> {
  let out = '';
  const args = parseArgs({ args: ['show', id, '--project', project], options: runsCommand.options, allowPositionals: true, strict: true });
  expect(await runsCommand.run(args, { out: (t) => (out += t), err: () => undefined })).toBe(0);
  return out;
}

describe('a result.json in the old shape', () => {
  it('loads upgraded: what it recorded carried over, what it did not left absent', async () => {
    const raw = JSON.parse(await readFile(join(legacyDir, 'result.json'), 'utf8'));
    const r = await readTuneRunResult(project, LEGACY);
    expect(r).toMatchObject({ legacy: true, spectrumPreprocess: 'none', method: 'mlp', preset: 'paper', engine: 'ort', backend: 'onnxruntime (cpu, 2 threads)', epochs: 3, trainRows: 60 });
    if (!r || !('legacy' in r)) throw new Error('not read as legacy');
    // The old SVE/LSVR were taken on Z as it is: they are also the raw values.
    expect(r.test).toEqual({ ...raw.test, sveRaw: raw.test.sve, lsvrRaw: raw.test.lsvr, backboneSveRaw: raw.test.backboneSve, backboneLsvrRaw: raw.test.backboneLsvr });
    expect(r.targets.map((t) => [t.name, t.accuracy, t.lsvrRaw])).toEqual([['blur', raw.targets[0].accuracy, raw.targets[0].lsvr]]);
    expect(r.singularValues).toEqual(raw.singularValues);
    expect(r.params).toEqual(raw.params);
    for (const absent of ['downstreamNoise', 'stopped']) expect(r).not.toHaveProperty(absent);
    // Parsing again (the transport re-checks RunDetail) changes nothing.
    expect(TuneRunResultFile.parse(r)).toEqual(r);
  });

  it('an engine the backend does not name and a preset the params lack stay null', () => {
    const raw = { method: 'lp', test: null, targets: [], oodAccuracy: null, oodLsvr: null, singularValues: [], backboneSingularValues: [], backboneSve: 1, backboneLsvr: 1, backend: 'unknown', seconds: 1, trainRows: 1, epochs: 1, params: {} };
    expect(TuneRunResultFile.parse(raw)).toMatchObject({ legacy: true, preset: null, engine: null });
    expect(TuneRunResultFile.parse({ ...raw, backend: 'wasm' })).toMatchObject({ engine: 'tfjs' });
  });

  it('is shown: the run detail, the summary, the transport schema and nmlab runs show', async () => {
    const detail = await readRunDetail(project, LEGACY);
    expect(detail.resultError).toBeNull();
    expect(detail.result).toMatchObject({ legacy: true, test: { accuracy: 0.5 } });
    expect(RunDetail.parse(detail)).toEqual(detail);
    expect(await readRunSummary(project, LEGACY)).toMatchObject({ status: 'succeeded', accuracy: 0.5, oodAccuracy: 0.43333333333333335, experimentId: 'legacy-exp' });
    const out = await show(LEGACY);
    expect(out).toContain('legacy result (recorded before presets, engines and preprocessed spectra): SVE/LSVR of Z as it is; preset paper, engine ort');
    expect(out).toContain('test: accuracy 50.00 %, macro-F1 40.00 %, SVE 1.7781, LSVR 1.0923');
    expect(out).toContain('target blur: accuracy 43.33 %, LSVR 0.8890');
  });
});

describe('a result.json in the current shape', () => {
  beforeAll(() => initTfBackend());

  it('round-trips through the file, the reader and the transport schema with every field', async () => {
    const train = await loadFeatureSet(tuning + 'lp_train_x.npy', tuning + 'lp_train_y.npy');
    const test = await loadFeatureSet(tuning + 'lp_test_x.npy', tuning + 'lp_test_y.npy');
    const { runId, result } = await runTuneFit({ method: 'lp', epochs: 2 }, { train, test, targets: [] }, { run: { projectDir: project } });
    expect(await readTuneRunResult(project, runId!)).toEqual(result);
    const detail = await readRunDetail(project, runId!);
    // The old transport schema dropped preset, engine, downstreamNoise, stopped and the raw spectra.
    expect(RunDetail.parse(detail).result).toEqual(result);
    expect(StoredTuneRunResult.parse(JSON.parse(JSON.stringify(result)))).toEqual(TuneRunResult.parse(result));
    expect(detail.result).not.toHaveProperty('legacy');
    expect(await show(runId!)).not.toContain('legacy');
  });
});

describe('a damaged result.json', () => {
  const resultFile = () => join(project, 'runs', LEGACY, 'result.json');

  it('cut short: an error naming the file and that it is not JSON; the detail still shows the run', async () => {
    const text = await readFile(resultFile(), 'utf8');
    await writeFile(resultFile(), text.slice(0, 200));
    await expect(readTuneRunResult(project, LEGACY)).rejects.toThrow(`${resultFile()} is not valid JSON`);
    const detail = await readRunDetail(project, LEGACY);
    expect(detail.result).toBeNull();
    expect(detail.resultError).toContain(`${resultFile()} is not valid JSON`);
    expect(detail.log).toContain('done in 0.24 s');
    expect(await show(LEGACY)).toContain(`result: ${resultFile()} is not valid JSON`);
  });

  it('a wrong field: the error names the file and the field', async () => {
    const raw = JSON.parse(await readFile(resultFile(), 'utf8'));
    raw.test.accuracy = '50 %';
    await writeFile(resultFile(), JSON.stringify(raw));
    await expect(readTuneRunResult(project, LEGACY)).rejects.toThrow(new RegExp(`^${resultFile().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a valid tuning result: test\\.accuracy: `));
    expect((await readRunDetail(project, LEGACY)).resultError).toMatch(/test\.accuracy/);
  });

  it('a result of another shape (no spectrum of Z) is no tuning result, and no error', async () => {
    await writeFile(resultFile(), JSON.stringify({ method: 'ft', test: { accuracy: 0.5 } }));
    const detail = await readRunDetail(project, LEGACY);
    expect([detail.result, detail.resultError]).toEqual([null, null]);
  });
});
