/**
 * The report section of one experiment: its comparison (mean ± sample std over seeds, the
 * paper's Table 4 layout), the metrics against γ where the backbones span several noise
 * ratios (Figs. 2, 3, 5, 7) and the singular-value spectra its runs stored (§5).
 */
import type { CompareResult, CompareRow, ExperimentFile, QueueEntry, Stat, TuneRunResult } from '../../shared/contract/experiments';
import type { ReportChart, ReportMethod, ReportSection, ReportSeries, ReportTable } from '../../shared/contract/reports';
import { gammaLabel } from '../../shared/contract/reports';
import { compareExperiment } from '../experiments/compare';
import { readRunResult } from '../experiments/runStore';
import { scalarFields } from './flatten';

const SPECTRUM_POINTS = 256;

function compareTable(c: CompareResult): ReportTable {
  const fractions = new Set(c.rows.map((r) => r.fraction));
  const ood = c.rows.some((r) => r.taskType === 'ood');
  return {
    id: `exp-${c.experimentId}-compare`,
    title: 'Comparison (mean ± std over seeds)',
    caption:
      'Accuracy and macro-F1 on the ID test set (for OOD tasks: the source domain’s own test split); OOD accuracy is the mean over the target domains. ' +
      'SVE of the tuned features Z on the ID test set, LSVR of Z on the OOD targets. Sample std (n − 1); a single seed has none.',
    columns: [
      { label: 'backbone', kind: 'text', scale: 1, digits: 0 },
      { label: 'γ', kind: 'text', scale: 1, digits: 0 },
      { label: 'task', kind: 'text', scale: 1, digits: 0 },
      { label: 'method', kind: 'text', scale: 1, digits: 0 },
      ...(fractions.size > 1 ? [{ label: 'fraction', kind: 'text' as const, scale: 1, digits: 0 }] : []),
      { label: 'n', kind: 'text', scale: 1, digits: 0 },
      { label: 'acc %', kind: 'stat', scale: 100, digits: 2 },
      { label: 'macro-F1', kind: 'stat', scale: 1, digits: 4 },
      ...(ood ? [{ label: 'OOD acc %', kind: 'stat' as const, scale: 100, digits: 2 }] : []),
      { label: 'SVE', kind: 'stat', scale: 1, digits: 4 },
      { label: 'LSVR', kind: 'stat', scale: 1, digits: 4 },
    ],
    rows: c.rows.map((r) => [
      r.backbone,
      gammaLabel(r.gamma),
      r.task,
      r.method,
      ...(fractions.size > 1 ? [`${Math.round(r.fraction * 1000) / 10}%`] : []),
      String(r.seeds.length),
      r.accuracy,
      r.macroF1,
      ...(ood ? [r.oodAccuracy] : []),
      r.sve,
      r.lsvr,
    ]),
  };
}

/** One series per (method, task) — task named only when there are several — over γ at the largest fraction. */
function seriesOverGamma(rows: CompareRow[], pick: (r: CompareRow) => Stat | null, scale: number, withBackbone?: (r: CompareRow) => Stat | null): ReportSeries[] {
  const fraction = Math.max(...rows.map((r) => r.fraction));
  const mine = rows.filter((r) => r.fraction === fraction && r.gamma !== null);
  const tasks = [...new Set(mine.map((r) => r.task))];
  const out: ReportSeries[] = [];
  const points = (list: CompareRow[], f: (r: CompareRow) => Stat | null) =>
    list
      .map((r) => ({ r, s: f(r) }))
      .filter((x): x is { r: CompareRow; s: Stat } => x.s !== null)
      .map(({ r, s }) => ({ x: r.gamma as number, y: scale * s.mean, std: s.std === null ? null : scale * s.std }))
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
    for (const m of [...new Set(ofTask.map((r) => r.method))]) {
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
  const common = { xLabel: 'pre-training label noise γ', xFormat: 'percent' as const, logY: false, caption: 'Mean over seeds; error bars ± sample std where there are several seeds.' };
  const charts: ReportChart[] = [];
  const add = (chart: Omit<ReportChart, 'xLabel' | 'xFormat' | 'logY' | 'caption'>) => {
    if (chart.series.some((s) => s.points.length > 0)) charts.push({ ...common, ...chart });
  };
  const pre = `exp-${c.experimentId}`;
  add({ id: `${pre}-acc-id`, title: 'ID accuracy against γ', yLabel: 'accuracy (%)', series: seriesOverGamma(id, (r) => r.accuracy, 100) });
  add({ id: `${pre}-acc-ood`, title: 'OOD accuracy (mean over targets) against γ', yLabel: 'accuracy (%)', series: seriesOverGamma(ood, (r) => r.oodAccuracy, 100) });
  add({ id: `${pre}-sve`, title: 'SVE on the ID test set against γ', yLabel: 'SVE', series: seriesOverGamma(id, (r) => r.sve, 1, (r) => r.backboneSve) });
  add({ id: `${pre}-lsvr`, title: 'LSVR on the OOD targets against γ', yLabel: 'LSVR', series: seriesOverGamma(ood, (r) => r.lsvr, 1, (r) => r.backboneLsvr) });
  return charts;
}

function normalised(values: number[]): Array<{ x: number; y: number; std: null }> {
  const s1 = values[0];
  if (!(s1 > 0)) return [];
  return values
    .slice(0, SPECTRUM_POINTS)
    .map((v, i) => ({ x: i + 1, y: v / s1, std: null }))
    .filter((p) => p.y > 0);
}

/**
 * Spectra from the runs' results: the backbone features F of each backbone (first finished
 * run of it), and the tuned Z of each method on the lowest-γ backbone (first seed).
 */
function spectraCharts(exp: ExperimentFile, results: Map<string, TuneRunResult>): ReportChart[] {
  const charts: ReportChart[] = [];
  const byBackbone = new Map<string, TuneRunResult>();
  for (const job of exp.jobs) {
    const r = results.get(job.key);
    if (r && !byBackbone.has(job.backbone) && r.backboneSingularValues.length) byBackbone.set(job.backbone, r);
  }
  const gammaOf = new Map(exp.spec.backbones.map((b) => [b.id, b.gamma ?? null]));
  const fSeries = [...byBackbone.entries()].map(([b, r]) => ({ label: gammaOf.get(b) !== null && gammaOf.get(b) !== undefined ? `${b} (γ = ${gammaLabel(gammaOf.get(b)!)})` : b, dashed: false, points: normalised(r.backboneSingularValues) }));
  if (fSeries.some((s) => s.points.length)) {
    charts.push({
      id: `exp-${exp.id}-spectra-f`,
      title: 'Singular-value spectra of the backbone features F',
      caption: 'σᵢ/σ₁ on the first evaluation set of each backbone’s first finished run, log scale.',
      xLabel: 'index i',
      yLabel: 'σᵢ / σ₁',
      xFormat: 'integer',
      logY: true,
      series: fSeries,
    });
  }
  const sorted = [...exp.spec.backbones].sort((a, b) => (a.gamma ?? 0) - (b.gamma ?? 0));
  const base = sorted[0]?.id;
  const zSeries: ReportSeries[] = [];
  const seen = new Set<string>();
  for (const job of exp.jobs) {
    if (job.backbone !== base || seen.has(`${job.task}|${job.method}`)) continue;
    const r = results.get(job.key);
    if (!r || r.singularValues.length === 0) continue;
    seen.add(`${job.task}|${job.method}`);
    const tasks = new Set(exp.spec.tasks.map((t) => t.id));
    zSeries.push({ label: tasks.size > 1 ? `${job.method} · ${job.task}` : job.method, dashed: false, points: normalised(r.singularValues) });
  }
  if (zSeries.some((s) => s.points.length)) {
    charts.push({
      id: `exp-${exp.id}-spectra-z`,
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

/** One experiment as a report section. */
export async function experimentPart(projectDir: string, exp: ExperimentFile, entries: QueueEntry[], notes: string[]): Promise<ExperimentPart> {
  const compare = await compareExperiment(projectDir, exp, entries);
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const results = new Map<string, TuneRunResult>();
  for (const job of exp.jobs) {
    const e = byKey.get(job.key);
    if (e?.state !== 'succeeded' || !e.runId) continue;
    const r = await readRunResult(projectDir, e.runId).catch(() => null);
    if (r) results.set(job.key, r);
  }
  if (compare.finished < compare.total) notes.push(`Experiment ${exp.id}: ${compare.finished} of ${compare.total} jobs have finished; the tables and charts show those.`);
  const spec = exp.spec;
  const section: ReportSection = {
    id: `exp-${exp.id}`,
    title: `Experiment: ${spec.name}`,
    intro: [
      `${spec.backbones.length} backbone(s) × ${spec.tasks.length} task(s) × ${spec.methods.length} method(s) × ${spec.fractions.length} data fraction(s) × ${spec.seeds.length} seed(s) = ${exp.jobs.length} jobs (id ${exp.id}, preset ${spec.preset}, created ${exp.createdAt}).`,
      `Tasks: ${spec.tasks.map((t) => (t.type === 'ood' ? `${t.id} (OOD: ${t.targets.map((x) => x.name).join(', ')})` : `${t.id} (ID)`)).join('; ')}. Seeds ${spec.seeds.join(', ')}; fractions ${spec.fractions.map((f) => `${Math.round(f * 1000) / 10}%`).join(', ')}.`,
    ],
    tables: [compareTable(compare)],
    charts: [...gammaCharts(compare), ...spectraCharts(exp, results)],
  };
  // Hyper-parameters as the runs recorded them (resolved defaults included); the spec's overrides otherwise.
  const methods: ReportMethod[] = spec.methods.map((m) => {
    const label = m.label ?? (m.method === 'nmtune' && m.preset !== 'paper' ? `nmtune-${m.preset}` : m.method);
    const job = exp.jobs.find((j) => j.method === label && results.has(j.key));
    const recorded = job ? results.get(job.key)!.params : { ...spec.defaults, ...m.params };
    return { label, method: m.method, preset: m.method === 'nmtune' ? m.preset : null, params: scalarFields(recorded) };
  });
  const backendsUsed = [...new Set([...results.values()].map((r) => r.backend))];
  return { section, methods, backendsUsed, compare };
}
