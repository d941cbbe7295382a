/**
 * The report section of one experiment: its comparison (mean ± half-width of the 95 %
 * Student-t interval, n and what n counts; the paper's Table 4 layout), the paired differences
 * to γ = 0, the §5 correlations across backbones, the metrics against γ with their intervals
 * as error bars where the backbones span several noise ratios (Figs. 2, 3, 5, 7), and the
 * singular-value spectra its runs stored (§5).
 */
import type { CompareCorrelation, CompareResult, CompareRow, Correlation, Estimate } from '../../shared/contract/compare';
import { isLinearProbe } from '../../shared/contract/compare';
import type { QueueEntry } from '../../shared/contract/experiments';
import type { StoredTuneRunResult } from '../../shared/contract/tuning';
import type { ReportChart, ReportMethod, ReportSection, ReportSeries, ReportTable } from '../../shared/contract/reports';
import { gammaLabel, relativeSpectrum } from '../../shared/contract/reports';
import { compareExperiment, tuneFits, type CompareFit } from '../experiments/compare';
import { readTuneRunResult } from '../runs/store';
import { legacyNote } from '../../shared/contract/legacy';
import { scalarFields } from './flatten';

const SPECTRUM_POINTS = 256;

/** "n = 3 replicates" / "n = 2 seeds": what the interval of a cell is over. */
function nOf(r: CompareRow): string {
  const e = r.taskType === 'ood' ? r.oodAccuracy : r.accuracy;
  return e ? `${e.n} ${e.over === 'replicates' ? 'rep.' : e.n === 1 ? 'seed' : 'seeds'}` : '—';
}

export function compareTable(c: CompareResult): ReportTable {
  const fractions = new Set(c.rows.map((r) => r.fraction));
  const ood = c.rows.some((r) => r.taskType === 'ood');
  const delta = c.rows.some((r) => r.deltaVsClean !== null);
  const missing = [...new Set(c.rows.flatMap((r) => r.legacy?.missing ?? []))];
  const text = (label: string) => ({ label, kind: 'text' as const, scale: 1, digits: 0 });
  return {
    id: `exp-${c.experimentId}-compare`,
    title: 'Comparison (mean ± 95 % CI)',
    caption:
      'Accuracy and macro-F1 on the ID test set; OOD accuracy is the mean over the target domains. SVE of the tuned features Z on the ID test set, LSVR of Z on the OOD targets. ' +
      '± is the half-width of the 95 % Student-t interval over pre-training replicates (tuning seeds averaged within each), or over tuning seeds when a cell has one replicate (then it shows tuning noise only); n says which. ' +
      (delta ? 'Δ vs γ = 0: headline accuracy minus the clean backbone’s, paired by replicate. ' : '') +
      '* marks the best method of a line, only where its interval lies above every other method’s.' +
      (missing.length ? ` † marks a line with fits ${legacyNote(missing)} (the runs are listed under Notes).` : ''),
    columns: [
      text('backbone'),
      text('γ'),
      text('task'),
      text('method'),
      ...(fractions.size > 1 ? [text('fraction')] : []),
      text('n'),
      { label: 'acc %', kind: 'stat', scale: 100, digits: 2 },
      { label: 'macro-F1', kind: 'stat', scale: 1, digits: 4 },
      ...(ood ? [{ label: 'OOD acc %', kind: 'stat' as const, scale: 100, digits: 2 }] : []),
      ...(delta ? [{ label: 'Δ vs γ=0 (pts)', kind: 'stat' as const, scale: 100, digits: 2 }] : []),
      { label: 'SVE', kind: 'stat', scale: 1, digits: 4 },
      { label: 'LSVR', kind: 'stat', scale: 1, digits: 4 },
    ],
    rows: c.rows.map((r) => [
      r.backbone,
      gammaLabel(r.gamma),
      r.task,
      `${r.method}${r.best ? ' *' : ''}${r.legacy ? ' †' : ''}`,
      ...(fractions.size > 1 ? [`${Math.round(r.fraction * 1000) / 10}%`] : []),
      nOf(r),
      r.accuracy,
      r.macroF1,
      ...(ood ? [r.oodAccuracy] : []),
      ...(delta ? [r.deltaVsClean] : []),
      r.sve,
      r.lsvr,
    ]),
  };
}

function corrCell(k: Correlation | null): string {
  if (!k) return '—';
  const ci = k.lo !== null && k.hi !== null ? ` [${k.lo.toFixed(2)}, ${k.hi.toFixed(2)}]` : '';
  return `${k.r.toFixed(3)}${ci}${k.p !== null ? `, p = ${k.p < 0.001 ? k.p.toExponential(1) : k.p.toFixed(3)}` : ''}`;
}

const CORR_NAMES: Record<CompareCorrelation['x'] | CompareCorrelation['y'], string> = {
  backboneSve: 'SVE(F), ID test',
  backboneLsvr: 'LSVR(F), OOD targets',
  accuracy: 'ID accuracy',
  oodAccuracy: 'OOD accuracy',
};

/** The paper's §5 argument: SVE(F) ↔ ID accuracy, LSVR(F) ↔ OOD accuracy, across backbones. */
export function correlationTable(c: CompareResult): ReportTable | null {
  if (c.correlations.length === 0) return null;
  const text = (label: string) => ({ label, kind: 'text' as const, scale: 1, digits: 0 });
  return {
    id: `exp-${c.experimentId}-correlations`,
    title: 'Spectrum of F against accuracy, across backbones (paper §5)',
    caption:
      'One point per backbone (tuning seeds averaged). r [95 % CI], two-sided p: Pearson with the Fisher-z interval; Spearman with the Bonett–Wright interval. ' +
      'The paper reports SVE(F) rising with ID accuracy at slight noise and OOD accuracy falling as LSVR(F) rises (Fig. 5).',
    columns: [text('task'), text('method'), text('x → y'), text('n'), text('Pearson r'), text('Spearman ρ')],
    rows: c.correlations.map((k) => [k.task, k.method, `${CORR_NAMES[k.x]} → ${CORR_NAMES[k.y]}`, String(k.points.length), corrCell(k.pearson), corrCell(k.spearman)]),
  };
}

/** The paper's claims with their verdicts (issue 10 item 3). */
export function claimsTable(c: CompareResult): ReportTable | null {
  if (c.claims.length === 0) return null;
  const text = (label: string) => ({ label, kind: 'text' as const, scale: 1, digits: 0 });
  const f = (k: CompareResult['claims'][number], v: number) => (k.kind === 'difference' ? `${v >= 0 ? '+' : ''}${(100 * v).toFixed(2)} pts` : `r = ${v.toFixed(3)}`);
  return {
    id: `exp-${c.experimentId}-claims`,
    title: 'The paper’s claims, from the intervals',
    caption: 'Supported: the 95 % interval excludes 0 on the claimed side; contradicted: it excludes 0 on the other side; inconclusive: it contains 0, or there is no interval.',
    columns: [text('claim'), text('verdict'), text('effect'), text('95 % CI'), text('basis')],
    rows: c.claims.map((k) => [k.statement, k.verdict, f(k, k.value), k.lo !== null && k.hi !== null ? `[${f(k, k.lo)}, ${f(k, k.hi)}]` : '—', k.basis]),
  };
}

/** A point with its 95 % interval as the error bar. */
function point(x: number, e: Estimate, scale: number): ReportSeries['points'][number] {
  return { x, y: scale * e.mean, std: e.std === null ? null : scale * e.std, lo: e.lo === null ? null : scale * e.lo, hi: e.hi === null ? null : scale * e.hi };
}

/** One series per (method, task) — task named only when there are several — over γ at the largest fraction. */
function seriesOverGamma(rows: CompareRow[], pick: (r: CompareRow) => Estimate | null, scale: number, withBackbone?: (r: CompareRow) => Estimate | null): ReportSeries[] {
  const fraction = Math.max(...rows.map((r) => r.fraction));
  const mine = rows.filter((r) => r.fraction === fraction && r.gamma !== null);
  const tasks = [...new Set(mine.map((r) => r.task))];
  const out: ReportSeries[] = [];
  const points = (list: CompareRow[], f: (r: CompareRow) => Estimate | null) =>
    list
      .map((r) => ({ r, e: f(r) }))
      .filter((x): x is { r: CompareRow; e: Estimate } => x.e !== null)
      .map(({ r, e }) => point(r.gamma as number, e, scale))
      .sort((a, b) => a.x - b.x);
  for (const task of tasks) {
    const suffix = tasks.length > 1 ? ` · ${task}` : '';
    const ofTask = mine.filter((r) => r.task === task);
    if (withBackbone) {
      // The backbone's own F does not depend on the method: one dashed curve per task.
      const first = [...new Map(ofTask.map((r) => [r.backbone, r])).values()];
      const p = points(first, withBackbone);
      if (p.length) out.push({ label: `backbone F${suffix}`, dashed: true, points: p });
    }
    // LP leaves the features as they are (Z = F): with F drawn, its Z line would lie on F's.
    for (const m of [...new Set(ofTask.map((r) => r.method))].filter((x) => !withBackbone || !isLinearProbe(x))) {
      const p = points(
        ofTask.filter((r) => r.method === m),
        pick,
      );
      if (p.length) out.push({ label: `${m}${withBackbone ? ' Z' : ''}${suffix}`, dashed: false, points: p });
    }
  }
  return out;
}

function gammaCharts(c: CompareResult): ReportChart[] {
  const gammas = new Set(c.rows.map((r) => r.gamma).filter((g) => g !== null));
  if (gammas.size < 2) return [];
  const id = c.rows.filter((r) => r.taskType === 'id');
  const ood = c.rows.filter((r) => r.taskType === 'ood');
  const common = { xLabel: 'pre-training label noise γ', xFormat: 'percent' as const, logY: false, caption: 'Means; error bars are 95 % confidence intervals (over replicates, or over tuning seeds for a single replicate); an arrowhead marks one that runs past the axis.' };
  const charts: ReportChart[] = [];
  const add = (chart: Omit<ReportChart, 'xLabel' | 'xFormat' | 'logY' | 'caption'>) => {
    if (chart.series.some((s) => s.points.length > 0)) charts.push({ ...common, ...chart });
  };
  const pre = `exp-${c.experimentId}`;
  add({ id: `${pre}-acc-id`, title: 'ID accuracy against γ', yLabel: 'accuracy (%)', yBounds: [0, 100], series: seriesOverGamma(id, (r) => r.accuracy, 100) });
  add({ id: `${pre}-acc-ood`, title: 'OOD accuracy (mean over targets) against γ', yLabel: 'accuracy (%)', yBounds: [0, 100], series: seriesOverGamma(ood, (r) => r.oodAccuracy, 100) });
  add({ id: `${pre}-sve`, title: 'SVE on the ID test set against γ', yLabel: 'SVE', series: seriesOverGamma(id, (r) => r.sve, 1, (r) => r.backboneSve) });
  add({ id: `${pre}-lsvr`, title: 'LSVR on the OOD targets against γ', yLabel: 'LSVR', series: seriesOverGamma(ood, (r) => r.lsvr, 1, (r) => r.backboneLsvr) });
  return charts;
}

function normalised(values: number[]): ReportSeries['points'] {
  return relativeSpectrum(values, SPECTRUM_POINTS).map((p) => ({ ...p, std: null }));
}

/** The column label of a fit (study fits carry `label`; first-schema jobs put it in `method`). */
const columnOf = (f: CompareFit) => f.label ?? f.method;

/**
 * Spectra from the runs' results: the backbone features F of each backbone (first finished
 * run of it), and the tuned Z of each method on the lowest-γ backbone (first seed).
 */
function spectraCharts(id: string, fits: CompareFit[], results: Map<string, StoredTuneRunResult>): ReportChart[] {
  const charts: ReportChart[] = [];
  const byBackbone = new Map<string, { r: StoredTuneRunResult; gamma: number | null }>();
  for (const f of fits) {
    const r = results.get(f.key);
    if (r && !byBackbone.has(f.backbone) && r.backboneSingularValues.length) byBackbone.set(f.backbone, { r, gamma: f.gamma });
  }
  const fSeries = [...byBackbone.entries()].map(([b, { r, gamma }]) => ({ label: gamma !== null ? `${b} (γ = ${gammaLabel(gamma)})` : b, dashed: false, points: normalised(r.backboneSingularValues) }));
  if (fSeries.some((s) => s.points.length)) {
    charts.push({
      id: `exp-${id}-spectra-f`,
      title: 'Singular-value spectra of the backbone features F',
      caption: 'σᵢ/σ₁ on the first evaluation set of each backbone’s first finished run, log scale.',
      xLabel: 'index i',
      yLabel: 'σᵢ / σ₁',
      xFormat: 'integer',
      logY: true,
      series: fSeries,
    });
  }
  const base = [...byBackbone.entries()].sort((a, b) => (a[1].gamma ?? 0) - (b[1].gamma ?? 0))[0]?.[0];
  const zSeries: ReportSeries[] = [];
  const seen = new Set<string>();
  const tasks = new Set(fits.map((f) => f.task));
  for (const f of fits) {
    const column = columnOf(f);
    if (f.backbone !== base || seen.has(`${f.task}|${column}`)) continue;
    const r = results.get(f.key);
    if (!r || r.singularValues.length === 0) continue;
    seen.add(`${f.task}|${column}`);
    zSeries.push({ label: tasks.size > 1 ? `${column} · ${f.task}` : column, dashed: false, points: normalised(r.singularValues) });
  }
  if (zSeries.some((s) => s.points.length)) {
    charts.push({
      id: `exp-${id}-spectra-z`,
      title: `Singular-value spectra of the tuned features Z (backbone ${base})`,
      caption: 'σᵢ/σ₁ of Z on the first evaluation set (first finished seed), log scale. LP leaves the features as they are (Z = F).',
      xLabel: 'index i',
      yLabel: 'σᵢ / σ₁',
      xFormat: 'integer',
      logY: true,
      series: zSeries,
    });
  }
  return charts;
}

export interface ExperimentPart {
  section: ReportSection;
  methods: ReportMethod[];
  backendsUsed: string[];
  compare: CompareResult;
}

/** What the report reads of an experiment file (either schema). */
export interface ReportedExperiment {
  id: string;
  createdAt: string;
  spec: {
    name: string;
    methods: Array<{ method: string; label?: string; preset: string; params: object }>;
    fractions: number[];
    seeds: number[];
    defaults: object;
  };
  jobs: readonly object[];
}

/** One experiment as a report section. */
export async function experimentPart(projectDir: string, exp: ReportedExperiment, entries: QueueEntry[], notes: string[]): Promise<ExperimentPart> {
  const compare = await compareExperiment(projectDir, exp, entries);
  const fits = tuneFits(exp.jobs);
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const results = new Map<string, StoredTuneRunResult>();
  for (const f of fits) {
    const e = byKey.get(f.key);
    if (e?.state !== 'succeeded' || !e.runId) continue;
    const r = await readTuneRunResult(projectDir, e.runId).catch(() => null);
    if (r) results.set(f.key, r);
  }
  const legacy = [...results.values()].filter((r) => r.spectrumPreprocess === 'none').length;
  if (legacy) notes.push(`Experiment ${exp.id}: ${legacy} fit(s) were recorded before NMLab preprocessed spectra; their SVE, LSVR and spectra are of Z as it is, not after the reference preprocessing of newer fits.`);
  if (compare.finished < compare.total) notes.push(`Experiment ${exp.id}: ${compare.finished} of ${compare.total} tuning fits have finished; the tables and charts show those.`);
  const spec = exp.spec;
  const count = (xs: Iterable<unknown>) => new Set(xs).size;
  const backbones = count(fits.map((f) => f.backbone));
  const correlations = correlationTable(compare);
  const claims = claimsTable(compare);
  const section: ReportSection = {
    id: `exp-${exp.id}`,
    title: `Experiment: ${spec.name}`,
    intro: [
      `${backbones} backbone(s) × ${count(fits.map((f) => f.task))} task(s) × ${spec.methods.length} method(s) × ${spec.fractions.length} data fraction(s) × ${spec.seeds.length} tuning seed(s) = ${fits.length} fits (id ${exp.id}, layout ${compare.preset}, created ${exp.createdAt}).`,
      `Tasks: ${[...new Set(compare.rows.map((r) => `${r.task} (${r.taskType.toUpperCase()})`))].join('; ') || '—'}. Tuning seeds ${spec.seeds.join(', ')}; fractions ${spec.fractions.map((f) => `${Math.round(f * 1000) / 10}%`).join(', ')}.`,
    ],
    tables: [...(claims ? [claims] : []), compareTable(compare), ...(correlations ? [correlations] : [])],
    charts: [...gammaCharts(compare), ...spectraCharts(exp.id, fits, results)],
  };
  // Hyper-parameters as the runs recorded them (resolved defaults included); the spec's overrides otherwise.
  const methods: ReportMethod[] = spec.methods.map((m) => {
    const label = m.label ?? (m.method === 'nmtune' && m.preset !== 'paper' ? `nmtune-${m.preset}` : m.method);
    const fit = fits.find((f) => columnOf(f) === label && results.has(f.key));
    const recorded = fit ? results.get(fit.key)!.params : { ...spec.defaults, ...m.params };
    return { label, method: m.method, preset: m.method === 'nmtune' ? m.preset : null, params: scalarFields(recorded) };
  });
  const backendsUsed = [...new Set([...results.values()].map((r) => r.backend))];
  return { section, methods, backendsUsed, compare };
}
