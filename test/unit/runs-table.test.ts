import { describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/shared/contract/experiments';
import { buildRows, columnsOf, diffConfigs, distinctValues, filterRows, flatten, sortRows, type RunOwner } from '../../src/renderer/src/components/runs/table';

const summary = (id: string, over: Partial<RunSummary> = {}): RunSummary => ({
  id,
  status: 'succeeded',
  kind: 'tune',
  experimentId: 'study-a',
  jobKey: null,
  attempt: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  endedAt: '2026-01-01T00:01:30.000Z',
  error: null,
  accuracy: 0.5,
  oodAccuracy: null,
  ...over,
});

const owner = (method: string, gamma: number, seed: number, epochs: number): RunOwner => ({
  studyId: 'study-a',
  studyName: 'Study A',
  job: { key: `g/${method}/s${seed}`, index: 0, backbone: 'g', gamma, method, seed, params: { epochs }, targets: [{ name: 'blur', features: 'f.npy', labels: 'l.npy' }], runIds: ['x'] },
});

describe('runs table model', () => {
  it('flattens nested configs to dotted keys, scalar arrays to one cell', () => {
    expect(flatten({ a: 1, b: { c: 'x', d: [1, 2] }, e: [{ f: true }], g: undefined, h: null })).toEqual({ a: 1, 'b.c': 'x', 'b.d': '1, 2', 'e.0.f': true, h: null });
  });

  it('joins runs with their study job, leaving out queue bookkeeping', () => {
    const rows = buildRows([summary('r1'), summary('r2', { experimentId: null, endedAt: null, accuracy: null })], new Map([['r1', owner('lp', 0.1, 0, 30)]]));
    expect(rows[0]).toMatchObject({ id: 'r1', study: 'Study A', studyId: 'study-a', method: 'lp', gamma: 0.1, seed: 0, 'params.epochs': 30, 'targets.0.name': 'blur', seconds: 90 });
    expect(rows[0]).not.toHaveProperty('runIds');
    expect(rows[0]).not.toHaveProperty('key');
    expect(rows[1]).toMatchObject({ id: 'r2', study: null, seconds: null, accuracy: null });
    const cols = columnsOf(rows);
    expect(cols.slice(0, 4).map((c) => c.key)).toEqual(['status', 'study', 'backbone', 'gamma']);
    expect(cols.find((c) => c.key === 'accuracy')?.numeric).toBe(true);
    expect(cols.find((c) => c.key === 'method')?.numeric).toBe(false);
  });

  it('shows a study tune job\'s method column label as the method', () => {
    const job = { key: 'k', stage: 'tune', method: 'nmtune', label: 'nmtune-reference', gamma: 0.2, eta: 0.1, deps: ['a', 'b'], runIds: ['r1'] };
    const [row] = buildRows([summary('r1')], new Map([['r1', { studyId: 's', studyName: 'S', job }]]));
    expect(row).toMatchObject({ stage: 'tune', method: 'nmtune-reference', baseMethod: 'nmtune', eta: 0.1 });
    expect(row).not.toHaveProperty('label');
    expect(row).not.toHaveProperty('deps');
  });

  it('filters by exact values and free text, sorts with empty cells last', () => {
    const rows = buildRows(
      [summary('r1', { accuracy: 0.7 }), summary('r2', { accuracy: null, status: 'failed' }), summary('r3', { accuracy: 0.9 })],
      new Map([
        ['r1', owner('lp', 0, 0, 30)],
        ['r2', owner('nmtune', 0.3, 0, 30)],
        ['r3', owner('nmtune', 0.05, 1, 40)],
      ]),
    );
    expect(filterRows(rows, { equals: { method: 'nmtune', status: '' }, text: '' }).map((r) => r.id)).toEqual(['r2', 'r3']);
    expect(filterRows(rows, { equals: { gamma: '0.05' }, text: '' }).map((r) => r.id)).toEqual(['r3']);
    expect(filterRows(rows, { equals: {}, text: 'FAIL' }).map((r) => r.id)).toEqual(['r2']);
    expect(sortRows(rows, 'accuracy', 'desc').map((r) => r.id)).toEqual(['r3', 'r1', 'r2']);
    expect(sortRows(rows, 'accuracy', 'asc').map((r) => r.id)).toEqual(['r1', 'r3', 'r2']);
    expect(distinctValues(rows, 'gamma')).toEqual(['0', '0.05', '0.3']);
  });

  it('diffs two configs on the keys that differ only, run identity left out', () => {
    const a = { id: 'r1', createdAt: 't1', kind: 'tune', job: { method: 'lp', params: { epochs: 30, lr: 0.1 }, seeds: [0, 1] } };
    const b = { id: 'r2', createdAt: 't2', kind: 'tune', job: { method: 'lp', params: { epochs: 40, lr: 0.1, warmupEpochs: 2 }, seeds: [0, 1] } };
    expect(diffConfigs(a, b)).toEqual([
      { key: 'job.params.epochs', a: 30, b: 40 },
      { key: 'job.params.warmupEpochs', a: undefined, b: 2 },
    ]);
    expect(diffConfigs(a, { ...a, id: 'other' })).toEqual([]);
  });
});
