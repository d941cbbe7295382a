/**
 * Results an older NMLab wrote (src/shared/contract/legacy.ts): the comparison flags the cells
 * whose fits lack what newer results record (the queue's tune result of test/fixtures/runs/,
 * made by that code), and the report reads every run's result through the same readers, naming
 * the file and the missing fields of a legacy tuning result and of a study pretrain result
 * written before NMLab recorded the labels' sha256 and the memorised share.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareFits, type CompareFit } from '../../src/core/experiments/compare';
import { gatherReport } from '../../src/core/reports/gather';
import { compareToCsv } from '../../src/shared/contract/compare';
import type { QueueEntry } from '../../src/shared/contract/experiments';
import { legacyNote, missingFields } from '../../src/shared/contract/legacy';
import { compareTable } from '../../src/core/reports/experiment';

const LEGACY = 'legacy-exp.j0000.a1';
const CURRENT = 'legacy-exp.j0001.a1';
const legacyDir = fileURLToPath(new URL(`../fixtures/runs/${LEGACY}/`, import.meta.url));
const TUNE_NOTE = 'recorded before NMLab stored preprocessed spectra (SVE and LSVR are of Z as it is), the downstream label noise and where training stopped; rerun to get them';

let project: string;
let raw: Record<string, unknown>;
beforeEach(async () => {
  project = await mkdtemp(join(tmpdir(), 'nmlab-legacy-'));
  const now = new Date().toISOString();
  await writeFile(join(project, 'nmlab.json'), JSON.stringify({ schemaVersion: 1, name: 'legacy', createdAt: now, updatedAt: now, app: { name: 'nmlab', version: '0.0.0' } }));
  await cp(legacyDir, join(project, 'runs', LEGACY), { recursive: true });
  raw = JSON.parse(await readFile(join(legacyDir, 'result.json'), 'utf8'));
});

/** A run folder like the fixture's, with this kind and result. */
async function writeRun(id: string, kind: string, jobKey: string, result: unknown): Promise<void> {
  const dir = join(project, 'runs', id);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ id, kind, experimentId: id.split('.')[0], jobKey, attempt: 1, createdAt: '2026-12-02T03:35:43.104Z' }));
  await cp(join(legacyDir, 'status.json'), join(dir, 'status.json'));
  await writeFile(join(dir, 'result.json'), JSON.stringify(result));
}

const fit = (key: string, backbone: string): CompareFit => ({ key, backbone, gamma: null, task: 'ood', taskType: 'ood', method: 'mlp', fraction: 1, seed: 0 });
const entry = (key: string, runId: string): QueueEntry => ({ key, state: 'succeeded', priority: 0, attempts: 1, runId, runIds: [runId], error: null, startedAt: null, endedAt: null });

describe('the comparison of fits with a legacy result', () => {
  it('flags the cell of the legacy fit with what it lacks and its run; the current fit’s cell is not flagged', async () => {
    // The same numbers in the current shape: it records its spectrum preprocessing.
    await writeRun(CURRENT, 'study.tune', 'new/mlp/s0', { ...raw, spectrumPreprocess: 'reference' });
    const c = await compareFits(project, { experimentId: 'legacy-exp', name: 'legacy', preset: 'custom' }, [fit('old/mlp/s0', 'old'), fit('new/mlp/s0', 'new')], [
      entry('old/mlp/s0', LEGACY),
      entry('new/mlp/s0', CURRENT),
    ]);
    expect(c.finished).toBe(2);
    const old = c.rows.find((r) => r.backbone === 'old')!;
    const cur = c.rows.find((r) => r.backbone === 'new')!;
    expect(old.legacy).toEqual({ missing: ['spectrumPreprocess', 'downstreamNoise', 'stopped'], runs: [LEGACY] });
    expect(cur.legacy).toBeNull();
    // The numbers are still the recorded ones (OOD accuracy 13/30, LSVR of Z as it is).
    expect(old.oodAccuracy?.mean).toBe(raw.oodAccuracy);
    expect(old.lsvr?.mean).toBe(raw.oodLsvr);
    expect(legacyNote(old.legacy!.missing)).toBe(TUNE_NOTE);

    const lines = compareToCsv(c).trim().split('\n');
    const head = lines[0].split(',');
    const cell = (backbone: string, col: string) => lines.find((l) => l.startsWith(`${backbone},`))!.split(',')[head.indexOf(col)];
    expect(cell('old', 'legacy_missing')).toBe('spectrumPreprocess downstreamNoise stopped');
    expect(cell('old', 'legacy_runs')).toBe(LEGACY);
    expect(cell('new', 'legacy_missing')).toBe('');

    // The PDF's comparison table marks the legacy line with † and says why in its caption.
    const table = compareTable(c);
    const method = table.columns.findIndex((col) => col.label === 'method');
    expect(table.rows.map((row) => [row[0], row[method]])).toEqual(c.rows.map((r) => [r.backbone, r.backbone === 'old' ? 'mlp †' : 'mlp']));
    expect(table.caption).toContain(`† marks a line with fits ${TUNE_NOTE} (the runs are listed under Notes).`);
  });
});

describe('the report of a project with legacy results', () => {
  it('reads each result through the upgrade and names the file and the fields a legacy one lacks', async () => {
    // A study pretrain result as written before NMLab recorded labelsSha256 and memorised (study.ts before 293c953), and one written now.
    await writeRun('old-study.j0001.a1', 'study.pretrain', 'pretrain/g10/r0', { backbone: 'resnet-tiny.g10-r0', sha256: 'ab'.repeat(32), reused: false, flippedCount: 12, testAccuracy: 0.81 });
    await writeRun('new-study.j0001.a1', 'study.pretrain', 'pretrain/g10/r0', {
      backbone: 'resnet-tiny.g10-r1',
      sha256: 'cd'.repeat(32),
      reused: false,
      labelsSha256: 'ef'.repeat(32),
      flippedCount: 12,
      memorised: 0.25,
      testAccuracy: 0.8,
    });
    const doc = await gatherReport({ projectDir: project }, { now: new Date('2026-12-02T00:00:00Z') });

    const pretrainNote = 'recorded before NMLab stored the sha256 of the labels it was trained on and the share of flipped labels it memorised; rerun to get them';
    expect(doc.notes).toContain(`Run old-study.j0001.a1 (${join('runs', 'old-study.j0001.a1', 'result.json')}) was ${pretrainNote}.`);
    expect(doc.notes).toContain(`Run ${LEGACY} (${join('runs', LEGACY, 'result.json')}) was ${TUNE_NOTE}.`);
    expect(doc.notes.filter((n) => n.includes('new-study'))).toEqual([]);
    // Two runs that lack the same fields share one note naming both files.
    await cp(join(project, 'runs', LEGACY), join(project, 'runs', 'legacy-exp.j0002.a1'), { recursive: true });
    const again = await gatherReport({ projectDir: project });
    const both = [LEGACY, 'legacy-exp.j0002.a1'];
    expect(again.notes).toContain(`Runs ${both.join(', ')} (${both.map((id) => join('runs', id, 'result.json')).join(', ')}) were ${TUNE_NOTE}.`);

    const run = (id: string) => doc.runs.find((r) => r.id === id)!;
    expect(run('old-study.j0001.a1').result).toEqual([
      { key: 'legacy', value: pretrainNote },
      { key: 'backbone', value: 'resnet-tiny.g10-r0' },
      { key: 'sha256', value: 'ab'.repeat(32) },
      { key: 'reused', value: false },
      { key: 'flippedCount', value: 12 },
      { key: 'testAccuracy', value: 0.81 },
    ]);
    expect(run('new-study.j0001.a1').result.map((f) => f.key)).toEqual(['backbone', 'sha256', 'reused', 'labelsSha256', 'flippedCount', 'memorised', 'testAccuracy']);
    // The tuning result is the upgraded one: the raw spectra beside the recorded ones, and what it lacks said once.
    const tune = run(LEGACY).result;
    expect(tune[0]).toEqual({ key: 'legacy', value: TUNE_NOTE });
    expect(tune).toContainEqual({ key: 'spectrumPreprocess', value: 'none' });
    expect(tune).toContainEqual({ key: 'test.sveRaw', value: (raw.test as { sve: number }).sve });
    expect(tune.filter((f) => f.key === 'legacy')).toHaveLength(1);
  });

  it('a reused backbone’s result from before labelsVerified names it; results of other kinds have no gaps', () => {
    expect(missingFields('study.pretrain', { backbone: 'b', sha256: 's', reused: true, provenance: null })).toEqual(['labelsSha256', 'labelsVerified']);
    expect(missingFields('study.pretrain', { backbone: 'b', sha256: 's', reused: true, labelsSha256: null, labelsVerified: false })).toEqual([]);
    expect(missingFields('study.noise', { dataset: 'd', reused: false })).toEqual([]);
  });
});
