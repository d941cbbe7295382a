/**
 * The comparison of a study (DESIGN §6, issue 10 item 2): every number as an estimate with its
 * 95 % confidence interval and the n behind it, the differences to the clean backbone (γ = 0)
 * paired by pre-training replicate, the paper's §5 correlations across backbones, and verdicts
 * read from the intervals. Computed in `src/core/stats` and `src/core/experiments/compare.ts`;
 * the app, `nmlab experiment compare --json/--csv` and the PDF report all show this document.
 */
import { z } from 'zod';

/** The confidence level of every interval NMLab reports. */
export const CONFIDENCE = 0.95;

/**
 * What the n of an estimate counts: pre-training `replicates` (tuning seeds averaged within
 * each first), or tuning `seeds` when there is a single replicate (then the interval covers
 * tuning noise only, not pre-training noise).
 */
export const EstimateUnit = z.enum(['replicates', 'seeds']);
export type EstimateUnit = z.infer<typeof EstimateUnit>;

/**
 * A mean over n units with its sample standard deviation (n − 1; null for n = 1) and the 95 %
 * Student-t interval mean ± t(0.975, n − 1)·std/√n (lo/hi null for n = 1). A superset of the
 * older `Stat` {mean, std, n}, so readers of that shape keep working.
 */
export const Estimate = z.object({
  mean: z.number(),
  std: z.number().nullable(),
  n: z.number().int().min(1),
  over: EstimateUnit,
  lo: z.number().nullable(),
  hi: z.number().nullable(),
});
export type Estimate = z.infer<typeof Estimate>;

/** A correlation coefficient with its 95 % interval (Fisher z; null for n ≤ 3) and two-sided p-value. */
export const Correlation = z.object({
  kind: z.enum(['pearson', 'spearman']),
  r: z.number(),
  n: z.number().int().min(0),
  lo: z.number().nullable(),
  hi: z.number().nullable(),
  p: z.number().nullable(),
});
export type Correlation = z.infer<typeof Correlation>;

/**
 * The verdict on a claimed direction: `supported` when the interval excludes 0 on the claimed
 * side, `contradicted` when it excludes 0 on the other side, `inconclusive` otherwise
 * (including when there is no interval).
 */
export const Verdict = z.enum(['supported', 'contradicted', 'inconclusive']);
export type Verdict = z.infer<typeof Verdict>;

/** The metrics compared per cell; `accuracy`, `macroF1`, `sve` are on the ID test, the others on OOD targets. */
export const COMPARE_METRICS = ['accuracy', 'macroF1', 'oodAccuracy', 'sve', 'lsvr', 'backboneSve', 'backboneLsvr'] as const;
export const CompareMetric = z.enum(COMPARE_METRICS);
export type CompareMetric = z.infer<typeof CompareMetric>;

/**
 * One cell of the comparison: a (backbone condition, task, method, fraction). A condition is
 * one backbone, or — when a study pre-trains replicates — every replicate pre-trained the
 * same way (same γ), listed in `replicates`.
 */
export const CompareRow = z.object({
  /** The backbone (or the condition's name when it spans replicates). */
  backbone: z.string(),
  gamma: z.number().nullable(),
  task: z.string(),
  taskType: z.enum(['id', 'ood']),
  method: z.string(),
  fraction: z.number(),
  /** Tuning seeds that finished (the union over replicates). */
  seeds: z.array(z.number().int()),
  /** Pre-training replicates behind the cell (backbone ids); one for an imported backbone. */
  replicates: z.array(z.string()).default([]),
  accuracy: Estimate.nullable(),
  macroF1: Estimate.nullable(),
  oodAccuracy: Estimate.nullable(),
  sve: Estimate.nullable(),
  lsvr: Estimate.nullable(),
  backboneSve: Estimate.nullable(),
  backboneLsvr: Estimate.nullable(),
  /** Per-domain OOD accuracy (target name → estimate), for the per-domain columns. */
  domains: z.record(z.string(), Estimate).default({}),
  /** Headline accuracy minus the same cell at γ = 0, paired by replicate (null without a γ = 0 cell or at γ = 0). */
  deltaVsClean: Estimate.nullable().default(null),
  /** Whether this method's headline interval lies above every other method's on the same line. */
  best: z.boolean().default(false),
  /**
   * Fits behind the cell whose results an older NMLab wrote: the fields they lack (./legacy.ts)
   * and their runs, so the view and CSV flag the cell instead of mixing them in silently.
   */
  legacy: z.object({ missing: z.array(z.string()), runs: z.array(z.string()) }).nullable().default(null),
});
export type CompareRow = z.infer<typeof CompareRow>;
export type CompareRowInput = z.input<typeof CompareRow>;

/**
 * The paper's §5 argument across backbones: SVE(F) on the ID test against ID accuracy, and
 * LSVR(F) on the OOD targets against OOD accuracy, one point per backbone (tuning seeds
 * averaged), per task × method × fraction.
 */
export const CompareCorrelation = z.object({
  task: z.string(),
  method: z.string(),
  fraction: z.number(),
  x: z.enum(['backboneSve', 'backboneLsvr']),
  y: z.enum(['accuracy', 'oodAccuracy']),
  points: z.array(z.object({ backbone: z.string(), gamma: z.number().nullable(), x: z.number(), y: z.number() })),
  pearson: Correlation.nullable(),
  spearman: Correlation.nullable(),
});
export type CompareCorrelation = z.infer<typeof CompareCorrelation>;

/** The paper's claims a study can test (issue 10 item 3). */
export const ClaimId = z.enum(['id-gain-slight-noise', 'ood-decline', 'sve-id', 'lsvr-ood', 'nmtune-over-mlp']);
export type ClaimId = z.infer<typeof ClaimId>;

/**
 * One claim read from the intervals: the effect (an accuracy difference, or a correlation r)
 * with its 95 % interval, the sign the paper claims, and the verdict. `basis` says what was
 * compared and over which n.
 */
export const Claim = z.object({
  id: ClaimId,
  statement: z.string(),
  sign: z.union([z.literal(1), z.literal(-1)]),
  verdict: Verdict,
  kind: z.enum(['difference', 'correlation']),
  value: z.number(),
  lo: z.number().nullable(),
  hi: z.number().nullable(),
  n: z.number().int(),
  basis: z.string(),
});
export type Claim = z.infer<typeof Claim>;

export const CompareResult = z.object({
  experimentId: z.string(),
  name: z.string(),
  /** The study's layout (the same names as the study spec's); the view also checks for a γ axis in the data. */
  preset: z.enum(['custom', 'noise-study', 'method-comparison']),
  rows: z.array(CompareRow),
  correlations: z.array(CompareCorrelation).default([]),
  /** Verdicts on the paper's claims this study's data can speak to (none it cannot). */
  claims: z.array(Claim).default([]),
  /** Confidence level of every interval. */
  confidence: z.number().default(CONFIDENCE),
  /** Finished / total jobs behind the numbers. */
  finished: z.number().int(),
  total: z.number().int(),
});
export type CompareResult = z.infer<typeof CompareResult>;

/**
 * An estimate as text: `85.66 ± 0.99` (mean ± half-width of its 95 % interval, times `scale`),
 * just the mean when it has no interval (n = 1), `—` when there is none; `signed` writes `+`
 * on differences.
 */
export function formatEstimate(e: Estimate | null | undefined, scale = 100, digits = 2, signed = false): string {
  if (!e) return '—';
  const m = (scale * e.mean).toFixed(digits);
  const mean = signed && e.mean >= 0 ? `+${m}` : m;
  return e.lo !== null && e.hi !== null ? `${mean} ± ${((scale * (e.hi - e.lo)) / 2).toFixed(digits)}` : mean;
}

/**
 * A claim's verdict as one line of text, for terminals (`experiment compare`, the end of
 * `nmlab demo`): differences in accuracy points, correlations as r, each with its 95 % interval
 * when there is one, and what was compared.
 */
export function formatClaim(k: Claim): string {
  const f = (v: number) => (k.kind === 'difference' ? `${(100 * v).toFixed(2)} pts` : `r ${v.toFixed(3)}`);
  return `${k.statement}: ${k.verdict} (${f(k.value)}${k.lo !== null && k.hi !== null ? `, 95 % CI [${f(k.lo)}, ${f(k.hi)}]` : ''}; ${k.basis})`;
}

/** Whether a method column is linear probing, whose tuned features Z are the backbone's F (by its label: `lp`, `lp-…`). */
export function isLinearProbe(method: string): boolean {
  return method === 'lp' || method.startsWith('lp-');
}

/** Mean ± std (older name of the estimate shape; kept for readers of `Stat`). */
export const Stat = z.object({ mean: z.number(), std: z.number().nullable(), n: z.number().int() });
export type Stat = z.infer<typeof Stat>;

const COLUMNS = ['backbone', 'gamma', 'task', 'taskType', 'method', 'fraction', 'seeds'] as const;

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The comparison as CSV: one row per cell; for each metric `<m>_mean`, `<m>_std`, `<m>_lo`,
 * `<m>_hi` (95 % CI), `<m>_n` and `<m>_over`; then the paired difference to γ = 0, `best`, the
 * replicates (space-separated backbone ids), and the fields legacy fits lack and their runs.
 */
export function compareToCsv(c: CompareResult): string {
  const est = (prefix: string) => ['mean', 'std', 'lo', 'hi', 'n', 'over'].map((k) => `${prefix}_${k}`);
  const header = [...COLUMNS, ...COMPARE_METRICS.flatMap(est), ...est('delta_vs_clean'), 'best', 'replicates', 'legacy_missing', 'legacy_runs'];
  const cells = (e: Estimate | null): unknown[] => (e ? [e.mean, e.std, e.lo, e.hi, e.n, e.over] : ['', '', '', '', '', '']);
  const lines = [header.join(',')];
  for (const r of c.rows) {
    lines.push(
      [
        ...COLUMNS.map((k) => (k === 'seeds' ? r.seeds.join(' ') : r[k])),
        ...COMPARE_METRICS.flatMap((m) => cells(r[m])),
        ...cells(r.deltaVsClean),
        r.best,
        r.replicates.join(' '),
        r.legacy?.missing.join(' ') ?? '',
        r.legacy?.runs.join(' ') ?? '',
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return lines.join('\n') + '\n';
}
