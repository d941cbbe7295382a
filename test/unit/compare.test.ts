/**
 * The comparison with intervals (src/core/experiments/compare.ts) on a small synthetic study
 * whose expected numbers come from numpy/scipy (test/fixtures/stats/make_stats.py, "study").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareResult, observationsOfFit, type CompareFitResult } from '../../src/core/experiments/compare';
import { compareToCsv, type Estimate } from '../../src/shared/contract/compare';

interface Interval {
  mean: number;
  std: number;
  n: number;
  lo: number;
  hi: number;
}
interface Study {
  obs: Array<{ gamma: number; replicate: number; backbone: string; method: string; seed: number; accuracy: number; backboneSve: number }>;
  cells: Array<{ gamma: number; method: string; accuracy: Interval; delta?: Interval }>;
  correlations: Array<{ method: string; n: number; pearson: { r: number; p: number; lo: number; hi: number }; spearman: { r: number; p: number } }>;
}
const study = (JSON.parse(readFileSync(join(__dirname, '../fixtures/stats/stats.json'), 'utf8')) as { study: Study }).study;

const evalSet = (name: string, accuracy: number, extra: Partial<{ sve: number; lsvr: number; backboneLsvr: number }> = {}) => ({
  name,
  accuracy,
  macroF1: accuracy,
  rows: 100,
  sve: extra.sve ?? 1,
  lsvr: extra.lsvr ?? 1,
  backboneLsvr: extra.backboneLsvr,
});

function result(accuracy: number, backboneSve: number): CompareFitResult {
  return { test: evalSet('test', accuracy), targets: [], oodAccuracy: null, oodLsvr: null, backboneSve, backboneLsvr: 0.5 };
}

function close(e: Estimate | null, want: Interval, over = 'replicates'): void {
  expect(e).not.toBeNull();
  for (const k of ['mean', 'std', 'lo', 'hi'] as const) expect(Math.abs(e![k]! - want[k])).toBeLessThan(1e-10 * Math.max(1, Math.abs(want[k])));
  expect(e!.n).toBe(want.n);
  expect(e!.over).toBe(over);
}

const header = { experimentId: 'syn', name: 'synthetic', preset: 'noise-study' as const };
const obs = study.obs.flatMap((o) =>
  observationsOfFit(
    { key: `${o.backbone}/${o.method}/${o.seed}`, backbone: o.backbone, gamma: o.gamma, replicate: o.replicate, task: 'fmnist', method: o.method, label: o.method, fraction: 1, seed: o.seed, oodTasks: [] },
    result(o.accuracy, o.backboneSve),
  ),
);

describe('compare: nested intervals, paired differences, correlations (numpy/scipy)', () => {
  const c = compareResult(header, obs, study.obs.length, study.obs.length);

  it('one row per γ × method, replicates grouped, mean ± 95 % CI over replicates', () => {
    expect(c.rows.length).toBe(6);
    for (const cell of study.cells) {
      const row = c.rows.find((r) => r.gamma === cell.gamma && r.method === cell.method)!;
      expect(row.backbone).toBe(`γ=${cell.gamma * 100}%`);
      expect(row.replicates.length).toBe(3);
      expect(row.seeds).toEqual([0, 1]);
      close(row.accuracy, cell.accuracy);
      if (cell.delta) close(row.deltaVsClean, cell.delta);
      else expect(row.deltaVsClean).toBeNull();
    }
  });

  it('best only where the intervals separate', () => {
    for (const g of [0, 0.1, 0.2]) {
      const [lp, nm] = ['lp', 'nmtune'].map((m) => c.rows.find((r) => r.gamma === g && r.method === m)!);
      const separated = nm.accuracy!.lo! > lp.accuracy!.hi!;
      expect(nm.best).toBe(separated);
      expect(lp.best).toBe(false);
    }
  });

  it('SVE(F) against ID accuracy across the 9 backbones', () => {
    for (const want of study.correlations) {
      const got = c.correlations.find((k) => k.method === want.method)!;
      expect(got).toMatchObject({ x: 'backboneSve', y: 'accuracy', task: 'fmnist' });
      expect(got.points.length).toBe(want.n);
      expect(got.pearson!.n).toBe(want.n);
      expect(got.pearson!.r).toBeCloseTo(want.pearson.r, 10);
      expect(got.pearson!.p).toBeCloseTo(want.pearson.p, 10);
      expect(got.pearson!.lo).toBeCloseTo(want.pearson.lo, 10);
      expect(got.pearson!.hi).toBeCloseTo(want.pearson.hi, 10);
      expect(got.spearman!.r).toBeCloseTo(want.spearman.r, 10);
      expect(got.spearman!.p).toBeCloseTo(want.spearman.p, 10);
    }
  });

  it('claims: verdicts from the intervals (the slight-noise difference and the SVE correlation of LP)', () => {
    const verdict = (lo: number, hi: number, sign: number) => (lo > 0 ? (sign > 0 ? 'supported' : 'contradicted') : hi < 0 ? (sign < 0 ? 'supported' : 'contradicted') : 'inconclusive');
    const slight = study.cells.find((x) => x.gamma === 0.1 && x.method === 'lp')!.delta!;
    const sve = study.correlations.find((k) => k.method === 'lp')!.pearson;
    expect(c.claims.map((k) => k.id)).toEqual(['id-gain-slight-noise', 'sve-id']);
    // A smallest γ above 10 % is not "slight": without γ = 0.1 the claim is not read.
    const without = compareResult(header, obs.filter((o) => o.gamma !== 0.1), 0, 0);
    expect(without.claims.map((k) => k.id)).toEqual(['sve-id']);
    const [gain, corr] = c.claims;
    expect(gain).toMatchObject({ sign: 1, kind: 'difference', n: 3, verdict: verdict(slight.lo, slight.hi, 1) });
    expect(gain.value).toBeCloseTo(slight.mean, 12);
    expect(gain.lo).toBeCloseTo(slight.lo, 12);
    expect(corr).toMatchObject({ sign: 1, kind: 'correlation', n: 9, verdict: verdict(sve.lo, sve.hi, 1) });
    expect(corr.value).toBeCloseTo(sve.r, 10);
    expect(corr.hi).toBeCloseTo(sve.hi, 10);
  });

  it('CSV carries every interval bound', () => {
    const lines = compareToCsv(c).trim().split('\n');
    const head = lines[0].split(',');
    expect(head.slice(7, 13)).toEqual(['accuracy_mean', 'accuracy_std', 'accuracy_lo', 'accuracy_hi', 'accuracy_n', 'accuracy_over']);
    const row = c.rows[0];
    const cells = lines[1].split(',');
    expect(Number(cells[head.indexOf('accuracy_lo')])).toBe(row.accuracy!.lo);
    expect(cells[head.indexOf('accuracy_over')]).toBe('replicates');
    expect(lines.length).toBe(1 + c.rows.length);
  });
});

describe('compare: fits of imported backbones and OOD tasks', () => {
  it('one replicate: intervals over seeds; OOD cells per OOD task with per-domain accuracy', () => {
    const fits = [0, 1, 2].map((seed) => ({ key: `b/${seed}`, backbone: 'resnet', gamma: null, task: 'cifar', method: 'lp', fraction: 1, seed, oodTasks: ['cifar-c'] }));
    const accs = [0.7, 0.72, 0.71];
    const o = fits.flatMap((f, i) =>
      observationsOfFit(
        f,
        {
          test: evalSet('test', accs[i]),
          targets: [evalSet('blur', accs[i] - 0.2, { lsvr: 2, backboneLsvr: 3 }), evalSet('noise', accs[i] - 0.3, { lsvr: 4, backboneLsvr: 5 })],
          oodAccuracy: null,
          oodLsvr: null,
          backboneSve: 2,
          backboneLsvr: 9,
        },
        { 'cifar-c': ['blur', 'noise'] },
      ),
    );
    const c = compareResult({ ...header, preset: 'method-comparison' }, o, 3, 3);
    const id = c.rows.find((r) => r.taskType === 'id')!;
    const ood = c.rows.find((r) => r.taskType === 'ood')!;
    expect(id.accuracy).toMatchObject({ n: 3, over: 'seeds' });
    expect(id.accuracy!.mean).toBeCloseTo(0.71, 12);
    // t(0.975, 2) · s/√3 with s = 0.01: 4.302652729749462 · 0.01/√3.
    expect(id.accuracy!.hi! - id.accuracy!.mean).toBeCloseTo((4.302652729749462 * 0.01) / Math.sqrt(3), 12);
    expect(ood.task).toBe('cifar-c');
    expect(ood.oodAccuracy!.mean).toBeCloseTo(0.71 - 0.25, 12);
    expect(ood.domains.blur.mean).toBeCloseTo(0.51, 12);
    expect(ood.domains.noise.mean).toBeCloseTo(0.41, 12);
    expect(ood.lsvr!.mean).toBe(3);
    expect(ood.backboneLsvr!.mean).toBe(4);
    // No γ axis: no differences to γ = 0, no correlation across a single backbone.
    expect(id.deltaVsClean).toBeNull();
    expect(c.correlations).toEqual([]);
  });

  it('a study fit serving two OOD tasks: each task reads its own `<task>:` targets', () => {
    const o = observationsOfFit(
      { key: 'k', backbone: 'b', gamma: null, task: 'id', method: 'lp', label: 'lp', fraction: 1, seed: 0, oodTasks: ['c', 'd'] },
      {
        test: evalSet('id:test', 0.9),
        targets: [evalSet('c:blur-3', 0.6), evalSet('c:noise-3', 0.4), evalSet('d:other', 0.2)],
        oodAccuracy: 0.4,
        oodLsvr: 1,
        backboneSve: 2,
        backboneLsvr: 3,
      },
    );
    expect(o.map((x) => [x.task, x.taskType, x.values.oodAccuracy ?? null])).toEqual([
      ['id', 'id', null],
      ['c', 'ood', 0.5],
      ['d', 'ood', 0.2],
    ]);
    expect(Object.keys(o[1].domains)).toEqual(['blur-3', 'noise-3']);
  });
});
