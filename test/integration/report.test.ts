/**
 * `nmlab report` end to end on a real project: `nmlab demo --quick` writes one (pre-training,
 * features, spectra, LP/MLP/NMTune per γ), the report command prints it through headless
 * Chromium from the renderer's report route, and the PDF is checked with poppler:
 * - pdftotext: the numbers of both demo tables equal results/demo-results.json on disk,
 *   formatted here the way the template prints them (percent with 2 decimals, others with 4);
 * - pdffonts: every font is embedded;
 * - pdfimages: every chart was drawn (one bitmap per chart, not blank);
 * - pdftoppm: every page rendered at 60 dpi has ink on it (pixel variance).
 * Skips, saying why, where Chromium or poppler-utils is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { findChromium } from '../../src/core/reports/pdf';

const root = join(__dirname, '..', '..');
// tsx's own CLI, as bin/nmlab.mjs runs the sources when there is no build.
const tsxCli = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function chromium(): string | null {
  try {
    return findChromium();
  } catch {
    return null;
  }
}

const missing = [
  ...['pdftotext', 'pdffonts', 'pdftoppm', 'pdfimages'].filter((c) => !has(c)).map((c) => `${c} (apt install poppler-utils)`),
  ...(chromium() ? [] : ['Chromium (apt install chromium, or set NMLAB_CHROMIUM)']),
];
if (missing.length) console.warn(`report.test: skipped, missing ${missing.join(', ')}`);

let tmp: string;
let project: string;
let pdf: string;
let cli: { file: string; pages: number | null; bytes: number; report: { sections: Array<{ charts: unknown[] }> } };
let disk: DiskResults;

/** What the test reads of results/demo-results.json: plain JSON, not the app's schema. */
interface DiskResults {
  config: { gammas: number[]; methods: string[] };
  protocol: { oodTargets: string[] };
  rows: Array<{ gamma: number; method: string; domain: string; accuracy: number; accuracyStd: number; seeds: number }>;
  summary: Array<{
    gamma: number;
    method: string;
    seeds: number;
    idAccuracy: number;
    idAccuracyStd: number;
    idMacroF1: number;
    idFeatSve: number;
    idZSve: number;
    oodAccuracy: number;
    oodAccuracyStd: number;
    oodMacroF1: number;
    oodFeatLsvr: number;
    oodZLsvr: number;
  }>;
}

function nmlab(args: string[], env: NodeJS.ProcessEnv): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [tsxCli, join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: tmp,
    env: { ...process.env, NMLAB_HOME: join(tmp, 'home'), ...env },
    encoding: 'utf8',
    timeout: 280_000,
    maxBuffer: 64 << 20,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The renderer built from the current sources into `tmp` (about 10 s), so the PDF shows this
 * checkout's template and never a stale out/renderer; NMLAB_RENDERER_DIR names a build to use instead.
 */
function buildRenderer(): string {
  if (process.env.NMLAB_RENDERER_DIR) return process.env.NMLAB_RENDERER_DIR;
  const out = join(tmp, 'renderer');
  const r = spawnSync(process.execPath, [join(__dirname, 'report-build-renderer.mjs'), out], { cwd: root, encoding: 'utf8', timeout: 240_000 });
  if (r.status !== 0) throw new Error(`building the renderer failed: ${r.stderr}`);
  return out;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const METHOD: Record<string, string> = { lp: 'LP', mlp: 'MLP', nmtune: 'NMTune' };
const pct = (v: number) => (100 * v).toFixed(2);
const f4 = (v: number) => v.toFixed(4);
const gamma = (g: number) => `${Math.round(g * 1000) / 10}%`;
/** Accuracy as the report prints it: percent, 2 decimals, "± std" over seeds when there are several. */
const acc = (mean: number, std: number, seeds: number) => (seeds > 1 ? `${pct(mean)} ± ${pct(std)}` : pct(mean));

/** Lines of `pdftotext -layout` that start with a γ and a method, whitespace collapsed. */
function linesStartingWithGamma(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => /^\d+(\.\d+)?% (LP|MLP|NMTune) /.test(l));
}

/** The printed lines with as many cells as the expected ones (so each table is picked out by its width). */
function printedLike(text: string, expected: string[]): string[] {
  const width = expected[0].split(' ').length;
  return linesStartingWithGamma(text).filter((l) => l.split(' ').length === width);
}

/** One summary line per γ × method of the demo's protocol, whatever its preset holds. */
const cells = (): number => disk.config.gammas.length * disk.config.methods.length;

describe.skipIf(missing.length > 0)('nmlab report on the demo project', () => {
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'nmlab-report-'));
    project = join(tmp, 'demo');
    const demo = nmlab(['demo', '--quick', '--out', project], {});
    expect(demo.code, demo.stderr).toBe(0);
    disk = JSON.parse(await readFile(join(project, 'results', 'demo-results.json'), 'utf8')) as DiskResults;
    pdf = join(tmp, 'report.pdf');
    const r = nmlab(['report', '--project', project, '--out', pdf, '--json'], { NMLAB_RENDERER_DIR: buildRenderer() });
    expect(r.code, r.stderr).toBe(0);
    cli = JSON.parse(r.stdout) as typeof cli;
  }, 600_000);

  afterAll(async () => {
    if (tmp && !process.env.NMLAB_KEEP_REPORT_TEST) await rm(tmp, { recursive: true, force: true });
  });

  it('writes an A4 PDF whose page count the CLI reports', () => {
    expect(cli.file).toBe(pdf);
    expect(readFileSync(pdf).subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const info = run('pdfinfo', [pdf]);
    const pages = Number(/Pages:\s+(\d+)/.exec(info)?.[1]);
    expect(pages).toBe(cli.pages);
    expect(pages).toBeGreaterThanOrEqual(3);
    // A4 is 595.28 × 841.89 pt; Chromium rounds to its own pixel grid.
    const [w, h] = /Page size:\s+([\d.]+) x ([\d.]+)/.exec(info)!.slice(1).map(Number);
    expect(Math.abs(w - 595.28)).toBeLessThan(1.5);
    expect(Math.abs(h - 841.89)).toBeLessThan(1.5);
  });

  it('prints the summary table with the numbers on disk', () => {
    const text = run('pdftotext', ['-layout', pdf, '-']);
    const expected = disk.summary.map((s) =>
      [
        gamma(s.gamma),
        METHOD[s.method],
        acc(s.idAccuracy, s.idAccuracyStd, s.seeds),
        f4(s.idMacroF1),
        f4(s.idFeatSve),
        f4(s.idZSve),
        acc(s.oodAccuracy, s.oodAccuracyStd, s.seeds),
        f4(s.oodMacroF1),
        f4(s.oodFeatLsvr),
        f4(s.oodZLsvr),
      ].join(' '),
    );
    expect(expected.length).toBe(cells());
    expect(printedLike(text, expected)).toEqual(expected);
  });

  it('prints the per-domain accuracies with the numbers on disk', () => {
    const text = run('pdftotext', ['-layout', pdf, '-']);
    const domains = ['id', ...disk.protocol.oodTargets];
    const keys = [...new Set(disk.rows.map((r) => `${r.gamma}|${r.method}`))];
    const expected = keys.map((k) => {
      const mine = disk.rows.filter((r) => `${r.gamma}|${r.method}` === k);
      const cell = (d: string) => {
        const r = mine.find((x) => x.domain === d)!;
        return acc(r.accuracy, r.accuracyStd, r.seeds);
      };
      return [gamma(mine[0].gamma), METHOD[mine[0].method], ...domains.map(cell)].join(' ');
    });
    expect(expected.length).toBe(cells());
    expect(printedLike(text, expected)).toEqual(expected);
    // The column headers are the domains.
    expect(text).toMatch(new RegExp(`method\\s+ID\\s+${disk.protocol.oodTargets.join('\\s+')}`));
  });

  it('embeds every font', () => {
    const lines = run('pdffonts', [pdf]).trim().split('\n').slice(2);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      // name type encoding emb sub uni object ID: `emb` is the 4th field from the end but 3.
      const cells = l.trim().split(/\s+/);
      expect(cells[cells.length - 5], l).toBe('yes');
    }
  });

  it('draws every chart (one non-blank bitmap each) with its title in the text', async () => {
    const charts = cli.report.sections.reduce((n, s) => n + s.charts.length, 0);
    expect(charts).toBeGreaterThanOrEqual(5);
    const text = run('pdftotext', [pdf, '-']);
    for (const title of ['ID accuracy against γ', 'OOD accuracy (mean over targets) against γ', 'SVE on the ID test set against γ', 'LSVR on the OOD targets (mean) against γ', 'Singular-value spectra of the backbone features']) {
      expect(text).toContain(title);
    }
    const dir = join(tmp, 'images');
    run('sh', ['-c', `mkdir -p '${dir}' && pdfimages -png '${pdf}' '${dir}/img'`]);
    const images = readdirSync(dir).filter((f) => f.endsWith('.png'));
    // Canvases are printed as bitmaps (with an alpha mask each); count the inked ones.
    let inked = 0;
    for (const f of images) {
      const png = PNG.sync.read(await readFile(join(dir, f)));
      if (png.width >= 300 && grayStd(png) > 10) inked++;
    }
    expect(inked).toBeGreaterThanOrEqual(charts);
  });

  it('renders every page with ink on it', async () => {
    const prefix = join(tmp, 'page');
    run('pdftoppm', ['-png', '-r', '60', pdf, prefix]);
    const pages = readdirSync(tmp)
      .filter((f) => f.startsWith('page') && f.endsWith('.png'))
      .sort();
    expect(pages.length).toBe(cli.pages);
    for (const p of pages) {
      const png = PNG.sync.read(await readFile(join(tmp, p)));
      expect(png.width).toBeGreaterThan(400);
      expect(grayStd(png), p).toBeGreaterThan(8);
    }
  });
});

/** Standard deviation of the grey level over all pixels (0 for a blank page). */
function grayStd(png: PNG): number {
  let s = 0;
  let s2 = 0;
  const n = png.width * png.height;
  for (let i = 0; i < n; i++) {
    const a = png.data[4 * i + 3] / 255;
    // Transparent pixels count as white paper.
    const g = (0.299 * png.data[4 * i] + 0.587 * png.data[4 * i + 1] + 0.114 * png.data[4 * i + 2]) * a + 255 * (1 - a);
    s += g;
    s2 += g * g;
  }
  const mean = s / n;
  return Math.sqrt(Math.max(0, s2 / n - mean * mean));
}
