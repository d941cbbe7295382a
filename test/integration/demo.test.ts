/**
 * `nmlab demo --quick` end to end in a temporary folder: the files exist, the JSON validates,
 * the numbers are finite and in range and agree with the CSV and the printed table, and a
 * second run resumes the demo study: it reuses every finished job (no new pre-training) and
 * recomputes only a job whose run was interrupted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DemoResults, TABLE_HEADER, type DemoRow } from '../../src/core/demo/results';
import { QUICK_CONFIG } from '../../src/core/demo/config';

const root = join(__dirname, '..', '..');
const tsx = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
let tmp: string;
let project: string;

function demo(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', tsx, join(root, 'src', 'cli', 'main.ts'), 'demo', ...args], {
    cwd: tmp,
    env: { ...process.env, NMLAB_HOME: join(tmp, 'home') },
    encoding: 'utf8',
    timeout: 900_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function runsOf(kind: string): Promise<Array<{ id: string; config: Record<string, unknown> }>> {
  const out = [];
  for (const id of await readdir(join(project, 'runs'))) {
    const config = JSON.parse(await readFile(join(project, 'runs', id, 'config.json'), 'utf8')) as Record<string, unknown>;
    if (config.kind === kind) out.push({ id, config });
  }
  return out;
}

/** The table lines printed under the header, split into cells. */
function tableRows(text: string): string[][] {
  const lines = text.split('\n');
  const h = lines.findIndex((l) => l.startsWith(TABLE_HEADER[0]) && l.includes('method') && l.includes('LSVR(Z)'));
  expect(h).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const l of lines.slice(h + 2)) {
    if (!/^\d/.test(l)) break;
    rows.push(l.trim().split(/\s+/));
  }
  return rows;
}

let first: DemoResults;
let firstRun: ReturnType<typeof demo>;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-demo-'));
  project = join(tmp, 'demo-project');
  firstRun = demo('--quick', '--json', '--out', project);
  if (firstRun.code !== 0) throw new Error(`nmlab demo failed (${firstRun.code}):\n${firstRun.stderr}`);
  first = DemoResults.parse(JSON.parse(firstRun.stdout));
}, 900_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('nmlab demo --quick', () => {
  it('writes the JSON, CSV and four SVG charts, and the JSON on disk is what was printed', async () => {
    const dir = join(project, 'results');
    const onDisk = DemoResults.parse(JSON.parse(await readFile(join(dir, 'demo-results.json'), 'utf8')));
    expect(onDisk).toEqual(first);
    expect(first.files.charts.sort()).toEqual(['results/accuracy-id.svg', 'results/accuracy-ood.svg', 'results/lsvr-ood.svg', 'results/sve-id.svg']);
    for (const c of first.files.charts) {
      const svg = await readFile(join(project, c), 'utf8');
      expect(svg.startsWith('<?xml')).toBe(true);
      expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      // One line per series, each through one point per γ.
      const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]);
      expect(paths.length).toBeGreaterThanOrEqual(3);
      for (const d of paths) expect(d.split(/[ML]/).filter(Boolean)).toHaveLength(QUICK_CONFIG.gammas.length);
    }
  });

  it('covers every γ × method × domain with finite numbers in range, and names the engine each backbone was pre-trained on', async () => {
    const targets = QUICK_CONFIG.corruptions.map((c) => c.name);
    expect(first.protocol.oodTargets).toEqual(targets);
    expect(first.rows).toHaveLength(QUICK_CONFIG.gammas.length * 3 * (1 + targets.length));
    expect(first.seedRows).toHaveLength(first.rows.length * QUICK_CONFIG.tuneSeeds.length);
    expect(first.rows.every((r) => r.seeds === QUICK_CONFIG.tuneSeeds.length)).toBe(true);
    expect(first.backbones.map((b) => b.gamma)).toEqual(QUICK_CONFIG.gammas);
    const dim = QUICK_CONFIG.arch.widths!.at(-1)!;
    for (const r of [...first.rows, ...first.seedRows]) {
      for (const v of [r.accuracy, r.macroF1]) expect(v >= 0 && v <= 1).toBe(true);
      // SVE of n singular values is at most log n; LSVR = −log(σ₁ share) is between 0 and log n.
      for (const v of [r.featSve, r.zSve, r.featSveRaw, r.zSveRaw, r.featLsvr, r.zLsvr, r.featLsvrRaw, r.zLsvrRaw]) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(Math.log(Math.min(dim, r.rows)) + 1e-9);
      }
      expect(r.rows).toBe(QUICK_CONFIG.downstreamTestPerClass * QUICK_CONFIG.downstreamClasses.length);
      if ('accuracyStd' in r) expect(Number.isFinite(r.accuracyStd) && r.accuracyStd >= 0).toBe(true);
      // Linear probing leaves the features as they are: Z = F.
      if (r.method === 'lp') {
        expect(r.zSve).toBeCloseTo(r.featSve, 9);
        expect(r.zLsvrRaw).toBeCloseTo(r.featLsvrRaw, 9);
      }
    }
    // Symmetric noise flips exactly round(γ·N) pre-training labels.
    for (const b of first.backbones) expect(b.flippedCount).toBe(Math.round(b.gamma * b.trainCount));
    expect(first.backbones[0].trainCount).toBe(QUICK_CONFIG.pretrainPerClass * QUICK_CONFIG.pretrainClasses.length);
    expect(first.timing.stages.every((s) => !s.reused)).toBe(true);
    // Each backbone names the engine its provenance records, and the summary prints it.
    const engines = await Promise.all(first.backbones.map(async (b) => JSON.parse(await readFile(join(project, b.dir, 'backbone.json'), 'utf8')).provenance.backend as string));
    expect(first.backbones.map((b) => b.backend)).toEqual(engines);
    expect(engines[0]).toMatch(/onnxruntime|tfjs|wasm/);
    if (new Set(engines).size === 1) expect(firstRun.stderr).toContain(`Pre-trained on ${engines[0]} (${engines.length} backbones).`);
  });

  it('averages seeds and target domains as documented, and the CSV holds the same rows', async () => {
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (const r of first.rows) {
      const seeds = first.seedRows.filter((x) => x.gamma === r.gamma && x.method === r.method && x.domain === r.domain);
      expect(seeds.map((x) => x.seed)).toEqual(QUICK_CONFIG.tuneSeeds);
      expect(r.accuracy).toBeCloseTo(avg(seeds.map((x) => x.accuracy)), 12);
      expect(r.zSve).toBeCloseTo(avg(seeds.map((x) => x.zSve)), 12);
      // Two seeds: the sample std is |a − b|/√2.
      expect(r.accuracyStd).toBeCloseTo(Math.abs(seeds[0].accuracy - seeds[1].accuracy) / Math.SQRT2, 12);
    }
    for (const s of first.summary) {
      const mine = first.rows.filter((r) => r.gamma === s.gamma && r.method === s.method);
      const ood = mine.filter((r) => r.kind === 'ood');
      const id = mine.find((r) => r.kind === 'id')!;
      expect(s.idAccuracy).toBeCloseTo(id.accuracy, 12);
      expect(s.idAccuracyStd).toBeCloseTo(id.accuracyStd, 12);
      expect(s.idFeatSve).toBe(id.featSve);
      expect(s.oodAccuracy).toBeCloseTo(avg(ood.map((r) => r.accuracy)), 12);
      expect(s.oodZLsvr).toBeCloseTo(avg(ood.map((r) => r.zLsvr)), 12);
      const perSeedOod = QUICK_CONFIG.tuneSeeds.map((seed) => avg(first.seedRows.filter((x) => x.gamma === s.gamma && x.method === s.method && x.kind === 'ood' && x.seed === seed).map((x) => x.accuracy)));
      expect(s.oodAccuracyStd).toBeCloseTo(Math.abs(perSeedOod[0] - perSeedOod[1]) / Math.SQRT2, 12);
    }
    const csv = (await readFile(join(project, 'results', 'demo-results.csv'), 'utf8')).trimEnd().split('\n');
    const header = csv[0].split(',');
    expect(csv).toHaveLength(first.rows.length + 1);
    csv.slice(1).forEach((line, i) => {
      const cells = line.split(',');
      const row = first.rows[i] as Record<keyof DemoRow, unknown>;
      header.forEach((h, k) => {
        const want = row[h as keyof DemoRow];
        if (typeof want === 'number') expect(Number(cells[k])).toBe(want);
        else expect(cells[k]).toBe(want);
      });
    });
  });

  it('prints a table whose numbers match the JSON', () => {
    const rows = tableRows(firstRun.stderr);
    expect(rows).toHaveLength(first.summary.length);
    rows.forEach((cells, i) => {
      const s = first.summary[i];
      expect(cells[0]).toBe(`${Math.round(s.gamma * 1000) / 10}%`);
      expect(cells[1]).toBe(s.method);
      // Accuracy cells read mean±std.
      const nums = cells.slice(2).flatMap((c) => c.split('±')).map(Number);
      const want = [100 * s.idAccuracy, 100 * s.idAccuracyStd, s.idMacroF1, s.idFeatSve, s.idZSve, 100 * s.oodAccuracy, 100 * s.oodAccuracyStd, s.oodMacroF1, s.oodFeatLsvr, s.oodZLsvr];
      const places = [2, 2, 4, 4, 4, 2, 2, 4, 4, 4];
      expect(nums).toHaveLength(want.length);
      nums.forEach((v, k) => expect(Math.abs(v - want[k])).toBeLessThanOrEqual(0.5 * 10 ** -places[k] + 1e-12));
    });
  });

  it('resumes: a second run reuses every finished job and redoes only an interrupted one', async () => {
    const pretrainRuns = await runsOf('study.pretrain');
    expect(pretrainRuns).toHaveLength(QUICK_CONFIG.gammas.length);
    const weights = join(project, first.backbones[0].dir, 'weights.bin');
    const mtime = (await stat(weights)).mtimeMs;
    // Make the last fit look killed mid-run: the queue and its run still say running, its process is gone.
    const study = first.protocol.study;
    const queueFile = join(project, 'experiments', study, 'queue.json');
    const queue = JSON.parse(await readFile(queueFile, 'utf8')) as { entries: Array<{ key: string; state: string; runId: string; endedAt: string | null }> };
    const fits = (await runsOf('study.tune')).map((r) => r.config.job as { key: string; title: string; gamma: number; method: string; seed: number });
    const lastSeed = QUICK_CONFIG.tuneSeeds.at(-1)!;
    const last = fits.find((j) => j.gamma === QUICK_CONFIG.gammas.at(-1) && j.method === 'nmtune' && j.seed === lastSeed)!;
    const entry = queue.entries.find((e) => e.key === last.key)!;
    entry.state = 'running';
    entry.endedAt = null;
    await writeFile(queueFile, JSON.stringify(queue));
    const statusFile = join(project, 'runs', entry.runId, 'status.json');
    const status = JSON.parse(await readFile(statusFile, 'utf8')) as Record<string, unknown>;
    await writeFile(statusFile, JSON.stringify({ ...status, status: 'running', endedAt: null, pid: 2 ** 22 + 12345 }));

    const again = demo('--quick', '--json', '--out', project);
    expect(again.code, again.stderr).toBe(0);
    const second = DemoResults.parse(JSON.parse(again.stdout));
    const redone = second.timing.stages.filter((s) => !s.reused);
    expect(redone.map((s) => s.label)).toEqual([last.title]);
    expect(await runsOf('study.pretrain')).toHaveLength(QUICK_CONFIG.gammas.length);
    expect((await stat(weights)).mtimeMs).toBe(mtime);
    expect(again.stderr).toMatch(/done earlier, reused/);
    // Everything reused reads back identically; the redone stage is seeded, so it matches too.
    expect(second.seedRows).toEqual(first.seedRows);
    expect(second.rows).toEqual(first.rows);
    expect(second.backbones).toEqual(first.backbones);
  }, 900_000);
});
