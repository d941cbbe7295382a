/**
 * The demo's results: the JSON document (validated by a schema, so the app and tests can read
 * it), the CSV (one row per γ × method × domain), the printed table and the comparison charts
 * (paper Figs. 2–3 and 5: accuracy against γ on ID and OOD, SVE against γ on ID, LSVR against
 * γ on OOD).
 *
 * Spectra: each is reported with the reference code's preprocessing (rows L2-normalised, then
 * centred; the paper's figures) as `sve`/`lsvr`, and without preprocessing as `sveRaw`/`lsvrRaw`.
 * "feat" is the backbone's features F of the evaluated set, "z" the tuned features Z (Z = F for LP).
 */
import { z } from 'zod';
import { Claim } from '../../shared/contract/compare';
import { lineChartSvg, type ChartSeries } from './svg';

const Finite = z.number().refine(Number.isFinite, 'must be finite');
const Unit = Finite.refine((v) => v >= 0 && v <= 1, 'must be in [0, 1]');
const NonNeg = Finite.refine((v) => v >= 0, 'must be ≥ 0');

const RowCore = {
  gamma: Unit,
  method: z.enum(['lp', 'mlp', 'nmtune']),
  /** `id` (clean held-out downstream images) or the name of an OOD target domain. */
  domain: z.string(),
  kind: z.enum(['id', 'ood']),
  rows: z.number().int().min(1),
  accuracy: Unit,
  macroF1: Unit,
  featSve: NonNeg,
  featLsvr: NonNeg,
  zSve: NonNeg,
  zLsvr: NonNeg,
  featSveRaw: NonNeg,
  featLsvrRaw: NonNeg,
  zSveRaw: NonNeg,
  zLsvrRaw: NonNeg,
};

/** One tuning seed's numbers on one domain. */
/** One fit's evaluation; `backbone` names the pre-training replicate it was tuned on (absent in results from before replicates). */
export const DemoSeedRow = z.object({ ...RowCore, seed: z.number().int(), backbone: z.string().optional() });
export type DemoSeedRow = z.infer<typeof DemoSeedRow>;

/**
 * One γ × method × domain: means over the tuning seeds, with the sample standard deviation
 * (n − 1; 0 for a single seed) of accuracy and macro-F1.
 */
export const DemoRow = z.object({ ...RowCore, seeds: z.number().int().min(1), accuracyStd: NonNeg, macroF1Std: NonNeg });
export type DemoRow = z.infer<typeof DemoRow>;

/** One line of the printed table: ID numbers, and OOD numbers averaged over the target domains. */
export const DemoSummary = z.object({
  gamma: Unit,
  method: z.enum(['lp', 'mlp', 'nmtune']),
  seeds: z.number().int().min(1),
  idAccuracy: Unit,
  /** Standard deviation over seeds of the ID accuracy, and of each seed's mean OOD accuracy. */
  idAccuracyStd: NonNeg,
  oodAccuracyStd: NonNeg,
  idMacroF1: Unit,
  idFeatSve: NonNeg,
  idZSve: NonNeg,
  oodAccuracy: Unit,
  oodMacroF1: Unit,
  oodFeatLsvr: NonNeg,
  oodZLsvr: NonNeg,
});
export type DemoSummary = z.infer<typeof DemoSummary>;

export const DemoBackbone = z.object({
  gamma: Unit,
  id: z.string(),
  dir: z.string(),
  sha256: z.string(),
  noisyDataset: z.string(),
  flippedCount: z.number().int().min(0),
  trainCount: z.number().int().min(1),
  /** Accuracy of the pre-trained classifier on its own clean held-out images. */
  pretrainTestAccuracy: Unit.nullable(),
  trainAccuracyClean: Unit,
  trainAccuracyNoisy: Unit,
  /** Pre-training replicate seed (absent in results from before replicates). */
  replicate: z.number().int().nullable().optional(),
  /** Share of the flipped pre-training labels the backbone reproduces (src/core/pretrain/memorisation.ts); null at γ = 0. */
  memorised: Unit.nullable().optional(),
  epochs: z.number().int().min(1),
  seconds: NonNeg,
  /**
   * The engine its pre-training ran on, from its provenance (e.g. 'onnxruntime, NCHWc
   * convolutions'): backbones from different engines differ in float rounding, and so can a
   * verdict near its line. Absent in results from before it was recorded.
   */
  backend: z.string().optional(),
});
export type DemoBackbone = z.infer<typeof DemoBackbone>;

export const DemoStageTiming = z.object({ kind: z.string(), label: z.string(), seconds: NonNeg, /** Null for stages that ran in a worker process (counted in the total). */ cpuSeconds: NonNeg.nullable(), reused: z.boolean(), runId: z.string() });

export const DemoResults = z.object({
  schemaVersion: z.literal(1),
  createdAt: z.string(),
  tool: z.object({ name: z.literal('nmlab'), version: z.string() }),
  project: z.string(),
  preset: z.enum(['standard', 'full', 'quick']),
  config: z.record(z.string(), z.unknown()),
  protocol: z.object({
    pretrainClasses: z.array(z.string()),
    downstreamClasses: z.array(z.string()),
    idTest: z.string(),
    oodSource: z.string(),
    oodTargets: z.array(z.string()).min(1),
    datasets: z.record(z.string(), z.string()),
    spectrumPreprocess: z.literal('reference'),
    /** The study (experiments/<id>/) whose runs these numbers come from. */
    study: z.string(),
  }),
  backend: z.object({ tf: z.string().nullable(), features: z.literal('onnxruntime-node') }),
  timing: z.object({ wallSeconds: NonNeg, cpuSeconds: NonNeg, loadAverage: z.array(z.number()), cores: z.number().int(), stages: z.array(DemoStageTiming) }),
  backbones: z.array(DemoBackbone).min(1),
  rows: z.array(DemoRow).min(1),
  seedRows: z.array(DemoSeedRow).min(1),
  summary: z.array(DemoSummary).min(1),
  /** Verdicts on the paper's claims from the study's comparison (absent in results from before them). */
  claims: z.array(Claim).default([]),
  files: z.object({ json: z.string(), csv: z.string(), charts: z.array(z.string()) }),
});
export type DemoResults = z.infer<typeof DemoResults>;

const CSV_COLUMNS: Array<keyof DemoRow> = [
  'gamma',
  'method',
  'domain',
  'kind',
  'rows',
  'accuracy',
  'macroF1',
  'featSve',
  'featLsvr',
  'zSve',
  'zLsvr',
  'featSveRaw',
  'featLsvrRaw',
  'zSveRaw',
  'zLsvrRaw',
  'seeds',
  'accuracyStd',
  'macroF1Std',
];

/** CSV (RFC 4180 quoting) of the rows, full precision. */
export function resultsCsv(rows: DemoRow[]): string {
  const q = (v: unknown) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((c) => q(r[c])).join(','))].join('\n') + '\n';
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sample standard deviation (n − 1), 0 for fewer than two values. */
export function sampleStd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of xs) out.set(key(x), [...(out.get(key(x)) ?? []), x]);
  return out;
}

/** Per γ × method × domain: means over seeds (first-seen order), std of accuracy and macro-F1. */
export function aggregateSeeds(seedRows: DemoSeedRow[]): DemoRow[] {
  return [...groupBy(seedRows, (r) => `${r.gamma}|${r.method}|${r.domain}`).values()].map((g) => {
    const avg = (f: (r: DemoSeedRow) => number) => mean(g.map(f));
    return {
      gamma: g[0].gamma,
      method: g[0].method,
      domain: g[0].domain,
      kind: g[0].kind,
      rows: g[0].rows,
      accuracy: avg((r) => r.accuracy),
      macroF1: avg((r) => r.macroF1),
      featSve: g[0].featSve,
      featLsvr: g[0].featLsvr,
      zSve: avg((r) => r.zSve),
      zLsvr: avg((r) => r.zLsvr),
      featSveRaw: g[0].featSveRaw,
      featLsvrRaw: g[0].featLsvrRaw,
      zSveRaw: avg((r) => r.zSveRaw),
      zLsvrRaw: avg((r) => r.zLsvrRaw),
      seeds: g.length,
      accuracyStd: sampleStd(g.map((r) => r.accuracy)),
      macroF1Std: sampleStd(g.map((r) => r.macroF1)),
    };
  });
}

/**
 * The per-γ × method summary: ID numbers and OOD numbers averaged over the target domains,
 * both averaged over seeds; the OOD standard deviation is over the seeds' OOD means.
 */
export function summarize(seedRows: DemoSeedRow[]): DemoSummary[] {
  const out: DemoSummary[] = [];
  for (const g of groupBy(seedRows, (r) => `${r.gamma}|${r.method}`).values()) {
    // One fit per pre-training replicate × tuning seed (older results: one backbone per γ).
    const bySeed = [...groupBy(g, (r) => `${r.backbone ?? ''}|${r.seed}`).values()];
    const ids = bySeed.map((s) => s.find((r) => r.kind === 'id'));
    const oods = bySeed.map((s) => s.filter((r) => r.kind === 'ood'));
    if (ids.some((r) => !r) || oods.some((o) => o.length === 0)) continue;
    const id = ids as DemoSeedRow[];
    const oodMean = (f: (r: DemoSeedRow) => number) => oods.map((o) => mean(o.map(f)));
    out.push({
      gamma: g[0].gamma,
      method: g[0].method,
      seeds: bySeed.length,
      idAccuracy: mean(id.map((r) => r.accuracy)),
      idAccuracyStd: sampleStd(id.map((r) => r.accuracy)),
      oodAccuracyStd: sampleStd(oodMean((r) => r.accuracy)),
      idMacroF1: mean(id.map((r) => r.macroF1)),
      idFeatSve: id[0].featSve,
      idZSve: mean(id.map((r) => r.zSve)),
      oodAccuracy: mean(oodMean((r) => r.accuracy)),
      oodMacroF1: mean(oodMean((r) => r.macroF1)),
      oodFeatLsvr: mean(oods[0].map((r) => r.featLsvr)),
      oodZLsvr: mean(oodMean((r) => r.zLsvr)),
    });
  }
  return out;
}

export const TABLE_HEADER = ['γ', 'method', 'ID acc %', 'ID F1', 'SVE(F)', 'SVE(Z)', 'OOD acc %', 'OOD F1', 'LSVR(F)', 'LSVR(Z)'];

/** The cells of one table line, as printed (tests parse them back). */
export function tableCells(s: DemoSummary): string[] {
  return [
    `${Math.round(s.gamma * 1000) / 10}%`,
    s.method,
    `${(100 * s.idAccuracy).toFixed(2)}±${(100 * s.idAccuracyStd).toFixed(2)}`,
    s.idMacroF1.toFixed(4),
    s.idFeatSve.toFixed(4),
    s.idZSve.toFixed(4),
    `${(100 * s.oodAccuracy).toFixed(2)}±${(100 * s.oodAccuracyStd).toFixed(2)}`,
    s.oodMacroF1.toFixed(4),
    s.oodFeatLsvr.toFixed(4),
    s.oodZLsvr.toFixed(4),
  ];
}

/** Fixed-width text table of the summary. */
export function formatTable(summary: DemoSummary[]): string {
  const body = summary.map(tableCells);
  const widths = TABLE_HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(TABLE_HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n';
}

const METHOD_LABEL: Record<DemoSummary['method'], string> = { lp: 'LP', mlp: 'MLP', nmtune: 'NMTune' };

/** The four comparison charts, as file name → SVG text. */
export function demoCharts(summary: DemoSummary[], gammas: number[]): Record<string, string> {
  const methods = [...new Set(summary.map((s) => s.method))];
  const xTicks = gammas.map((g) => Math.round(g * 1000) / 10);
  const pct = (v: number) => `${v}%`;
  // `std` (accuracy): an error bar of ± one standard deviation over the fits, as in the table.
  const by = (m: DemoSummary['method'], f: (s: DemoSummary) => number, std?: (s: DemoSummary) => number): ChartSeries => ({
    name: METHOD_LABEL[m],
    points: summary
      .filter((s) => s.method === m)
      .map((s) => ({ x: Math.round(s.gamma * 1000) / 10, y: f(s), ...(std ? { lo: f(s) - std(s), hi: f(s) + std(s) } : {}) })),
  });
  const featSeries = (f: (s: DemoSummary) => number): ChartSeries => ({
    name: 'backbone F',
    dashed: true,
    points: gammas.map((g) => {
      const s = summary.find((r) => r.gamma === g);
      return { x: Math.round(g * 1000) / 10, y: s ? f(s) : NaN };
    }),
  });
  const common = { xLabel: 'pre-training label noise γ', xTicks, xFormat: pct };
  return {
    'accuracy-id.svg': lineChartSvg({ ...common, title: 'ID accuracy vs pre-training noise', yLabel: 'accuracy (%, ± std)', series: methods.map((m) => by(m, (s) => 100 * s.idAccuracy, (s) => 100 * s.idAccuracyStd)), yFormat: (v) => v.toFixed(1), yBounds: [0, 100] }),
    'accuracy-ood.svg': lineChartSvg({ ...common, title: 'OOD accuracy (mean over targets) vs noise', yLabel: 'accuracy (%, ± std)', series: methods.map((m) => by(m, (s) => 100 * s.oodAccuracy, (s) => 100 * s.oodAccuracyStd)), yFormat: (v) => v.toFixed(1), yBounds: [0, 100] }),
    'sve-id.svg': lineChartSvg({
      ...common,
      title: 'SVE on the ID test set vs noise',
      yLabel: 'SVE',
      series: [featSeries((s) => s.idFeatSve), ...methods.filter((m) => m !== 'lp').map((m) => ({ ...by(m, (s) => s.idZSve), name: `${METHOD_LABEL[m]} Z` }))],
      yFormat: (v) => v.toFixed(3),
    }),
    'lsvr-ood.svg': lineChartSvg({
      ...common,
      title: 'LSVR on OOD targets (mean) vs noise',
      yLabel: 'LSVR',
      series: [featSeries((s) => s.oodFeatLsvr), ...methods.filter((m) => m !== 'lp').map((m) => ({ ...by(m, (s) => s.oodZLsvr), name: `${METHOD_LABEL[m]} Z` }))],
      yFormat: (v) => v.toFixed(3),
    }),
  };
}
