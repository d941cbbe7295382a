/**
 * Reports (issue 6): everything about a project, or one experiment of it, gathered once in
 * core (`src/core/reports`) into one JSON document, validated here, and rendered by one
 * template (the renderer's report route). The app prints that route with Electron's
 * `printToPDF`; the CLI and browser mode print it through headless Chromium. Both use
 * {@link REPORT_PDF}, so the same document gives the same PDF.
 *
 * Numbers stay numbers in the document: the template formats them (see {@link formatCell}),
 * so a test can format the values on disk the same way and find them in the PDF's text.
 */
import { z } from 'zod';
import { ExperimentId, ProjectDir } from './experiments';

export const REPORT_SCHEMA_VERSION = 1;

/** What to report on: a whole project, or one experiment of it. */
export const ReportQuery = z.object({ projectDir: ProjectDir, experimentId: ExperimentId.optional() });
export type ReportQuery = z.infer<typeof ReportQuery>;

/**
 * A mean with its spread: the 95 % interval [lo, hi] when the document has one (a comparison's
 * estimates, src/shared/contract/compare.ts), else ± sample std (std null for a single seed).
 */
export const ReportStat = z.object({
  mean: z.number(),
  std: z.number().nullable(),
  n: z.number().int().min(0),
  lo: z.number().nullable().optional(),
  hi: z.number().nullable().optional(),
});
export type ReportStat = z.infer<typeof ReportStat>;

export const ReportCell = z.union([z.string(), z.number(), ReportStat, z.null()]);
export type ReportCell = z.infer<typeof ReportCell>;

/**
 * A table column. `stat` and `number` cells are multiplied by `scale` (100 for percentages)
 * and printed with `digits` decimals.
 */
export const ReportColumn = z.object({
  label: z.string(),
  kind: z.enum(['text', 'number', 'stat']),
  scale: z.number().default(1),
  digits: z.number().int().min(0).max(8).default(4),
});
export type ReportColumn = z.infer<typeof ReportColumn>;

export const ReportTable = z.object({
  id: z.string(),
  title: z.string(),
  caption: z.string().default(''),
  columns: z.array(ReportColumn).min(1),
  rows: z.array(z.array(ReportCell)),
});
export type ReportTable = z.infer<typeof ReportTable>;

/** A point; its error bar is [lo, hi] (a 95 % interval) when given, else ± std. */
export const ReportPoint = z.object({
  x: z.number(),
  y: z.number(),
  std: z.number().nullable().default(null),
  lo: z.number().nullable().optional(),
  hi: z.number().nullable().optional(),
});
export type ReportPoint = z.infer<typeof ReportPoint>;

export const ReportSeries = z.object({ label: z.string(), dashed: z.boolean().default(false), points: z.array(ReportPoint) });
export type ReportSeries = z.infer<typeof ReportSeries>;

/** A line chart: metrics against γ (x in [0, 1], shown as percent) or a spectrum (index, log y). */
export const ReportChart = z.object({
  id: z.string(),
  title: z.string(),
  caption: z.string().default(''),
  xLabel: z.string(),
  yLabel: z.string(),
  xFormat: z.enum(['percent', 'integer', 'number']),
  logY: z.boolean().default(false),
  /** Values the y axis never goes beyond (e.g. [0, 100] for accuracy in %): a 95 % interval of a mean near 100 % may reach past it. */
  yBounds: z.tuple([z.number(), z.number()]).optional(),
  series: z.array(ReportSeries),
});
export type ReportChart = z.infer<typeof ReportChart>;

/** One part of the report: the demo study, or one experiment. */
export const ReportSection = z.object({
  id: z.string(),
  title: z.string(),
  /** Paragraphs saying what was run and how to read the numbers. */
  intro: z.array(z.string()),
  tables: z.array(ReportTable),
  charts: z.array(ReportChart),
});
export type ReportSection = z.infer<typeof ReportSection>;

export const ReportScalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export type ReportScalar = z.infer<typeof ReportScalar>;

export const ReportField = z.object({ key: z.string(), value: ReportScalar });
export type ReportField = z.infer<typeof ReportField>;

export const ReportEnvironment = z.object({
  platform: z.string(),
  arch: z.string(),
  cpus: z.number().int(),
  cpuModel: z.string(),
  memoryGiB: z.number(),
  versions: z.object({
    nmlab: z.string(),
    node: z.string(),
    tfjs: z.string().nullable(),
    onnxruntime: z.string().nullable(),
    electron: z.string().nullable(),
    chrome: z.string().nullable(),
  }),
  /** Compute backends named by the results (tfjs backend, onnxruntime-node, …). */
  backendsUsed: z.array(z.string()),
  /** The latest doctor report of this session, when there is one. */
  doctor: z
    .object({ tfjsBackend: z.string(), matmulSize: z.number().int(), gflops: z.number(), onnxruntime: z.string(), measuredAt: z.string() })
    .nullable(),
});
export type ReportEnvironment = z.infer<typeof ReportEnvironment>;

/** A dataset with its provenance; `noise` for derived label-noise sets (γ or η). */
export const ReportDataset = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.string(),
  count: z.number().int(),
  classes: z.number().int(),
  domains: z.array(z.string()),
  split: z.string().nullable(),
  parent: z.string().nullable(),
  op: z.string().nullable(),
  noise: z.object({ type: z.string(), ratio: z.number(), seed: z.number().int(), flippedCount: z.number().int() }).nullable(),
});
export type ReportDataset = z.infer<typeof ReportDataset>;

/** A backbone with its provenance (noise type and γ of its pre-training data, when known). */
export const ReportBackbone = z.object({
  id: z.string(),
  source: z.string(),
  gamma: z.number().nullable(),
  noiseType: z.string().nullable(),
  noiseSeed: z.number().int().nullable(),
  dataset: z.string().nullable(),
  featureDim: z.number().int().nullable(),
  sha256: z.string().nullable(),
  /** Further facts (epochs, pre-training accuracy, flipped labels, …). */
  details: z.array(ReportField),
});
export type ReportBackbone = z.infer<typeof ReportBackbone>;

/** A tuning method and its resolved hyper-parameters. */
export const ReportMethod = z.object({ label: z.string(), method: z.string(), preset: z.string().nullable(), params: z.array(ReportField) });
export type ReportMethod = z.infer<typeof ReportMethod>;

/** One run of the appendix: its identity and the scalars of its config and result. */
export const ReportRun = z.object({
  id: z.string(),
  kind: z.string(),
  status: z.string(),
  label: z.string(),
  createdAt: z.string(),
  seconds: z.number().nullable(),
  config: z.array(ReportField),
  result: z.array(ReportField),
});
export type ReportRun = z.infer<typeof ReportRun>;

export const ReportDocument = z.object({
  schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
  title: z.string(),
  subtitle: z.string(),
  scope: z.enum(['project', 'experiment']),
  projectDir: z.string(),
  projectName: z.string(),
  experimentId: z.string().nullable(),
  generatedAt: z.string(),
  environment: ReportEnvironment,
  datasets: z.array(ReportDataset),
  backbones: z.array(ReportBackbone),
  methods: z.array(ReportMethod),
  sections: z.array(ReportSection),
  runs: z.array(ReportRun),
  /** Caveats worth reading before the numbers (unfinished jobs, missing results, …). */
  notes: z.array(z.string()),
});
export type ReportDocument = z.infer<typeof ReportDocument>;
export type ReportDocumentInput = z.input<typeof ReportDocument>;

/** Where `reports.exportPdf` saved the file. */
export const ReportExport = z.object({ path: z.string(), bytes: z.number().int(), seconds: z.number() });
export type ReportExport = z.infer<typeof ReportExport>;

export const ReportExportInput = ReportQuery.extend({
  /** File name inside the project's `reports/` folder (default: from the title and date). */
  fileName: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.pdf$/, 'a report file name is letters, digits, ".", "-" and "_", ending in .pdf')
    .optional(),
});
export type ReportExportInput = z.infer<typeof ReportExportInput>;

/**
 * The page set-up both printers use. Size and margins come from the template's `@page` rule
 * (`preferCSSPageSize`); the footer carries page numbers.
 */
export const REPORT_PDF = {
  format: 'A4',
  printBackground: true,
  preferCSSPageSize: true,
  displayHeaderFooter: true,
  headerTemplate: '<span></span>',
  footerTemplate:
    '<div style="width:100%;font-size:8px;color:#667085;padding:0 14mm;display:flex;justify-content:space-between;font-family:\'DejaVu Sans\',\'Liberation Sans\',Arial,sans-serif">' +
    '<span class="title"></span><span><span class="pageNumber"></span> / <span class="totalPages"></span></span></div>',
} as const;

/** The route the printers open: `#/print/report?project=…[&experiment=…]`. */
export function reportRoute(q: ReportQuery): string {
  const params = new URLSearchParams({ project: q.projectDir });
  if (q.experimentId) params.set('experiment', q.experimentId);
  return `/print/report?${params.toString()}`;
}

/** A number as the template prints it: `value · scale` with `digits` decimals, "—" when not finite. */
export function formatNumber(value: number, scale = 1, digits = 4): string {
  const v = value * scale;
  if (!Number.isFinite(v)) return '—';
  // -0.00 reads as a sign error in a table.
  const s = v.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

/**
 * A cell as the template prints it; stats read `mean ± h` with h the half-width of the 95 %
 * interval when the cell has one, else `mean ± std` (just the mean for one seed).
 */
export function formatCell(cell: ReportCell, col: Pick<ReportColumn, 'kind' | 'scale' | 'digits'>): string {
  if (cell === null) return '—';
  if (typeof cell === 'string') return cell;
  if (typeof cell === 'number') return col.kind === 'text' ? String(cell) : formatNumber(cell, col.scale, col.digits);
  const mean = formatNumber(cell.mean, col.scale, col.digits);
  if (typeof cell.lo === 'number' && typeof cell.hi === 'number') return `${mean} ± ${formatNumber((cell.hi - cell.lo) / 2, col.scale, col.digits)}`;
  return cell.std === null ? mean : `${mean} ± ${formatNumber(cell.std, col.scale, col.digits)}`;
}

/** γ in [0, 1] as a percent label: 0.05 → "5%". */
export function gammaLabel(g: number | null): string {
  return g === null ? '—' : `${Math.round(g * 1000) / 10}%`;
}

/** A scalar of the appendix: numbers to 4 significant digits (integers whole), the rest as text. */
export function formatScalar(v: ReportScalar): string {
  if (v === null) return '—';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
  }
  return String(v);
}

/**
 * A spectrum as NMLab draws it, in the app and in reports: σᵢ/σ₁ against i = 1…`max`
 * (descending singular values scaled by the largest, so spectra of different feature scales
 * compare; paper §5), zeros dropped for the log axis. Empty when σ₁ is not positive.
 */
export function relativeSpectrum(values: readonly number[], max = 256): Array<{ x: number; y: number }> {
  const s1 = values[0];
  if (!(s1 > 0)) return [];
  return values
    .slice(0, max)
    .map((v, i) => ({ x: i + 1, y: v / s1 }))
    .filter((p) => p.y > 0);
}
