/**
 * The report section of `nmlab demo`'s study (results/demo-results.json): the per-γ × method
 * table the demo prints, accuracy per OOD domain, the paper's comparison charts (Figs. 2–3, 5:
 * accuracy against γ on ID and OOD, SVE on ID, LSVR on OOD) and the singular-value spectra of
 * each backbone's features (§5), which the demo summarises but does not store, so they are
 * computed here from the cached feature files.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportChart, ReportMethod, ReportSection, ReportSeries, ReportStat, ReportTable } from '../../shared/contract/reports';
import { gammaLabel, relativeSpectrum } from '../../shared/contract/reports';
import { readNpy } from '../arrays/npy';
import { DemoResults, type DemoSummary } from '../demo/results';
import { FEATURES_FOLDER, FeatureCacheMeta } from '../features/cache';
import { errnoCode } from '../fs/errors';
import { resolveInside } from '../projects/resolveInside';
import { spectrumOfMatrix } from '../spectrum';
import { compareResult, type CompareObservation } from '../experiments/compare';
import { claimsTable, compareTable, correlationTable } from './experiment';
import { scalarFields } from './flatten';

export const DEMO_RESULTS_FILE = 'results/demo-results.json';

/** Largest M·D² (multiply-adds of the D×D Gram) computed while gathering a report. */
const SPECTRUM_BUDGET = 2e9;
/** Singular values drawn per spectrum. */
const SPECTRUM_POINTS = 256;

const METHOD_NAME: Record<string, string> = { lp: 'LP', mlp: 'MLP', nmtune: 'NMTune' };

/** The demo's results, or null when the project has none (or an unreadable one, said in `notes`). */
export async function readDemoResults(projectDir: string, notes: string[] = []): Promise<DemoResults | null> {
  const file = await resolveInside(projectDir, DEMO_RESULTS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    notes.push(`${DEMO_RESULTS_FILE} is not valid JSON and is left out; run \`nmlab demo --out ${projectDir}\` again to rewrite it.`);
    return null;
  }
  const parsed = DemoResults.safeParse(raw);
  if (!parsed.success) {
    notes.push(`${DEMO_RESULTS_FILE} was written by another NMLab version (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}) and is left out; run \`nmlab demo --out ${projectDir}\` again to rewrite it.`);
    return null;
  }
  return parsed.data;
}

/** Mean ± sample std over `n` seeds (the demo stores 0 for one seed; the report shows none). */
const stat = (mean: number, std: number, n: number): ReportStat => ({ mean, std: n > 1 ? std : null, n });
const one = (v: number, n: number): ReportStat => ({ mean: v, std: null, n });

function summaryTable(summary: DemoSummary[]): ReportTable {
  return {
    id: 'demo-summary',
    title: 'Downstream results per pre-training noise γ and method',
    caption:
      'ID: clean held-out downstream images. OOD: mean over the target domains. SVE on the ID test set, LSVR on the OOD targets; ' +
      'F = backbone features, Z = tuned features (LP: Z = F); rows L2-normalised and centred before the spectrum. ' +
      'Accuracies are mean ± sample std over the tuning seeds (OOD: std of each seed’s mean over the targets); the other columns are means.',
    columns: [
      { label: 'γ', kind: 'text', scale: 1, digits: 0 },
      { label: 'method', kind: 'text', scale: 1, digits: 0 },
      { label: 'ID acc %', kind: 'stat', scale: 100, digits: 2 },
      { label: 'ID F1', kind: 'stat', scale: 1, digits: 4 },
      { label: 'SVE(F)', kind: 'stat', scale: 1, digits: 4 },
      { label: 'SVE(Z)', kind: 'stat', scale: 1, digits: 4 },
      { label: 'OOD acc %', kind: 'stat', scale: 100, digits: 2 },
      { label: 'OOD F1', kind: 'stat', scale: 1, digits: 4 },
      { label: 'LSVR(F)', kind: 'stat', scale: 1, digits: 4 },
      { label: 'LSVR(Z)', kind: 'stat', scale: 1, digits: 4 },
    ],
    rows: summary.map((s) => [
      gammaLabel(s.gamma),
      METHOD_NAME[s.method] ?? s.method,
      stat(s.idAccuracy, s.idAccuracyStd, s.seeds),
      one(s.idMacroF1, s.seeds),
      one(s.idFeatSve, s.seeds),
      one(s.idZSve, s.seeds),
      stat(s.oodAccuracy, s.oodAccuracyStd, s.seeds),
      one(s.oodMacroF1, s.seeds),
      one(s.oodFeatLsvr, s.seeds),
      one(s.oodZLsvr, s.seeds),
    ]),
  };
}

function domainTable(r: DemoResults): ReportTable {
  const domains = ['id', ...r.protocol.oodTargets];
  const keys = [...new Set(r.rows.map((x) => `${x.gamma}|${x.method}`))];
  return {
    id: 'demo-domains',
    title: 'Accuracy (%) per evaluation domain',
    caption: `Each tuned model evaluated on the clean ID test set and on every corruption domain of it (${r.protocol.oodTargets.join(', ')}); mean ± sample std over the tuning seeds.`,
    columns: [
      { label: 'γ', kind: 'text', scale: 1, digits: 0 },
      { label: 'method', kind: 'text', scale: 1, digits: 0 },
      ...domains.map((d) => ({ label: d === 'id' ? 'ID' : d, kind: 'stat' as const, scale: 100, digits: 2 })),
    ],
    rows: keys.map((k) => {
      const mine = r.rows.filter((x) => `${x.gamma}|${x.method}` === k);
      return [
        gammaLabel(mine[0].gamma),
        METHOD_NAME[mine[0].method] ?? mine[0].method,
        ...domains.map((d) => {
          const row = mine.find((x) => x.domain === d);
          return row ? stat(row.accuracy, row.accuracyStd, row.seeds) : null;
        }),
      ];
    }),
  };
}

function againstGamma(summary: DemoSummary[], pick: (s: DemoSummary) => number, scale: number, std?: (s: DemoSummary) => number): ReportSeries[] {
  const methods = [...new Set(summary.map((s) => s.method))];
  return methods.map((m) => ({
    label: METHOD_NAME[m] ?? m,
    dashed: false,
    points: summary.filter((s) => s.method === m).map((s) => ({ x: s.gamma, y: scale * pick(s), std: std && s.seeds > 1 ? scale * std(s) : null })),
  }));
}

/** The backbone-F curve (the same for every method) and one Z curve per method that changes Z. */
function spectralSeries(summary: DemoSummary[], feat: (s: DemoSummary) => number, z: (s: DemoSummary) => number): ReportSeries[] {
  const gammas = [...new Set(summary.map((s) => s.gamma))];
  const f: ReportSeries = {
    label: 'backbone F',
    dashed: true,
    points: gammas.map((g) => ({ x: g, y: feat(summary.find((s) => s.gamma === g)!), std: null })),
  };
  const methods = [...new Set(summary.map((s) => s.method))].filter((m) => m !== 'lp');
  return [f, ...methods.map((m) => ({ label: `${METHOD_NAME[m] ?? m} Z`, dashed: false, points: summary.filter((s) => s.method === m).map((s) => ({ x: s.gamma, y: z(s), std: null })) }))];
}

function gammaCharts(summary: DemoSummary[]): ReportChart[] {
  const seeds = Math.max(...summary.map((s) => s.seeds));
  const common = { xLabel: 'pre-training label noise γ', xFormat: 'percent' as const, logY: false, caption: seeds > 1 ? `Means over ${seeds} tuning seeds.` : '' };
  const bars = seeds > 1 ? `Means over ${seeds} tuning seeds; error bars ± sample std.` : '';
  return [
    { ...common, caption: bars, id: 'demo-acc-id', title: 'ID accuracy against γ', yLabel: 'accuracy (%)', yBounds: [0, 100], series: againstGamma(summary, (s) => s.idAccuracy, 100, (s) => s.idAccuracyStd) },
    { ...common, caption: bars, id: 'demo-acc-ood', title: 'OOD accuracy (mean over targets) against γ', yLabel: 'accuracy (%)', yBounds: [0, 100], series: againstGamma(summary, (s) => s.oodAccuracy, 100, (s) => s.oodAccuracyStd) },
    { ...common, id: 'demo-sve', title: 'SVE on the ID test set against γ', yLabel: 'SVE', series: spectralSeries(summary, (s) => s.idFeatSve, (s) => s.idZSve) },
    { ...common, id: 'demo-lsvr', title: 'LSVR on the OOD targets (mean) against γ', yLabel: 'LSVR', series: spectralSeries(summary, (s) => s.oodFeatLsvr, (s) => s.oodZLsvr) },
  ];
}

/** Feature-cache sidecars of the project (features/<key>.json). */
async function featureMetas(projectDir: string): Promise<FeatureCacheMeta[]> {
  const root = await resolveInside(projectDir, FEATURES_FOLDER);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: FeatureCacheMeta[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    try {
      out.push(FeatureCacheMeta.parse(JSON.parse(await readFile(join(root, n), 'utf8'))));
    } catch {
      /* not a sidecar */
    }
  }
  return out;
}

/**
 * σᵢ/σ₁ of each backbone's features of the downstream set (every row, reference
 * preprocessing: rows L2-normalised, then centred; paper §5), on a log axis. Feature sets too
 * large to decompose while a report is gathered are left out with a note.
 */
async function spectraChart(projectDir: string, r: DemoResults, notes: string[]): Promise<ReportChart | null> {
  const metas = await featureMetas(projectDir);
  const series: ReportSeries[] = [];
  let rowsUsed = 0;
  for (const b of r.backbones) {
    const meta = metas.find((m) => m.backbone.sha256 === b.sha256 && m.dataset === r.protocol.datasets.downstream);
    if (!meta) {
      notes.push(`No cached features of backbone ${b.id} on ${r.protocol.datasets.downstream}; its spectrum is not drawn.`);
      continue;
    }
    if (meta.count * meta.featureDim * meta.featureDim > SPECTRUM_BUDGET) {
      notes.push(`The features of ${b.id} (${meta.count}×${meta.featureDim}) are too large to decompose while writing a report; run \`nmlab spectrum\` on ${meta.file}.`);
      continue;
    }
    const arr = await readNpy(await resolveInside(projectDir, meta.file));
    const s = await spectrumOfMatrix(arr.data as Float32Array, meta.count, meta.featureDim, meta.file, { preprocess: 'reference' });
    const points = relativeSpectrum(Array.from(s.singularValues), SPECTRUM_POINTS).map((p) => ({ ...p, std: null }));
    if (points.length === 0) continue;
    rowsUsed = meta.count;
    series.push({ label: `γ = ${gammaLabel(b.gamma)}`, dashed: false, points });
  }
  if (series.length === 0) return null;
  return {
    id: 'demo-spectra',
    title: 'Singular-value spectra of the backbone features',
    caption: `σᵢ/σ₁ of each backbone's features of the ${rowsUsed} downstream images (rows L2-normalised, then centred), log scale.`,
    xLabel: 'index i',
    yLabel: 'σᵢ / σ₁',
    xFormat: 'integer',
    logY: true,
    series,
  };
}

function seedText(cfg: Record<string, unknown>): string {
  const seeds = Array.isArray(cfg.tuneSeeds) ? cfg.tuneSeeds : typeof cfg.tuneSeed === 'number' ? [cfg.tuneSeed] : [];
  return seeds.length > 1 ? `seeds ${seeds.join(', ')} (mean ± sample std over seeds)` : seeds.length === 1 ? `seed ${String(seeds[0])} (one seed: no ± std)` : 'seeds not recorded';
}

export interface DemoPart {
  section: ReportSection;
  methods: ReportMethod[];
  backendsUsed: string[];
  /** Per-backbone facts the backbone list adds to its provenance. */
  backboneDetails: Map<string, Array<{ key: string; value: number | string | null }>>;
}

/** The demo study as a report section; `tuneParams` are the recorded params of each method's tuning runs. */
/**
 * The demo's per-seed rows as comparison observations: one backbone per γ, an `id` task and one
 * `ood` task over the corruption domains (accuracy and spectra averaged over the domains per
 * seed). The demo then gets the intervals, the differences to γ = 0, the §5 correlations and
 * the claims' verdicts that every study gets (src/core/experiments/compare.ts).
 */
export function demoObservations(r: Pick<DemoResults, 'backbones' | 'seedRows'>): CompareObservation[] {
  const backboneOf = new Map(r.backbones.map((b) => [b.gamma, b.id]));
  const groups = new Map<string, DemoResults['seedRows']>();
  for (const row of r.seedRows) {
    const k = `${row.gamma}|${row.backbone ?? ''}|${row.method}|${row.seed}`;
    groups.set(k, [...(groups.get(k) ?? []), row]);
  }
  const out: CompareObservation[] = [];
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const rows of groups.values()) {
    const { gamma, method, seed } = rows[0];
    // Each pre-training replicate is its own backbone (results before replicates: one per γ).
    const backbone = rows[0].backbone ?? backboneOf.get(gamma) ?? `γ=${gammaLabel(gamma)}`;
    const base = { condition: backbone, backbone, gamma, replicate: backbone, method, fraction: 1, seed };
    const id = rows.find((x) => x.kind === 'id');
    const ood = rows.filter((x) => x.kind === 'ood');
    if (id) out.push({ ...base, task: 'id', taskType: 'id', values: { accuracy: id.accuracy, macroF1: id.macroF1, sve: id.zSve, lsvr: id.zLsvr, backboneSve: id.featSve, backboneLsvr: id.featLsvr }, domains: {} });
    if (ood.length) {
      out.push({
        ...base,
        task: 'ood',
        taskType: 'ood',
        values: { oodAccuracy: avg(ood.map((x) => x.accuracy)), lsvr: avg(ood.map((x) => x.zLsvr)), backboneLsvr: avg(ood.map((x) => x.featLsvr)), backboneSve: id?.featSve },
        domains: Object.fromEntries(ood.map((x) => [x.domain, x.accuracy])),
      });
    }
  }
  return out;
}

export async function demoPart(projectDir: string, r: DemoResults, tuneParams: Map<string, Record<string, unknown>>, notes: string[]): Promise<DemoPart> {
  const cfg = r.config;
  const obs = demoObservations(r);
  const compare = compareResult({ experimentId: 'demo', name: 'nmlab demo', preset: 'noise-study' }, obs, obs.length, obs.length);
  // The study's own verdicts when recorded (they read its jobs directly), else from the seed rows.
  const claims = claimsTable(r.claims.length ? { ...compare, claims: r.claims } : compare);
  const correlations = correlationTable(compare);
  const charts = gammaCharts(r.summary);
  const spectra = await spectraChart(projectDir, r, notes);
  if (spectra) charts.push(spectra);
  const section: ReportSection = {
    id: 'demo',
    title: `Noise study (nmlab demo, ${r.preset} preset)`,
    intro: [
      `Pre-training on ${r.protocol.pretrainClasses.join(', ')} with symmetric label noise γ ∈ {${[...new Set(r.backbones.map((b) => gammaLabel(b.gamma)))].join(', ')}}, one backbone per γ from the same initialisation.`,
      `Downstream task: ${r.protocol.downstreamClasses.join(', ')} — ${r.protocol.idTest} for ID; OOD source ${r.protocol.oodSource}, targets ${r.protocol.oodTargets.join(', ')}.`,
      `Tuning: ${typeof cfg.tuneEpochs === 'number' ? cfg.tuneEpochs : '?'} epochs, batch ${typeof cfg.tuneBatchSize === 'number' ? cfg.tuneBatchSize : '?'}, ${seedText(cfg)}. Results written ${r.createdAt}.`,
    ],
    tables: [...(claims ? [claims] : []), summaryTable(r.summary), domainTable(r), compareTable(compare), ...(correlations ? [correlations] : [])],
    charts,
  };
  const methods: ReportMethod[] = [...new Set(r.summary.map((s) => s.method))].map((m) => ({
    label: METHOD_NAME[m] ?? m,
    method: m,
    preset: m === 'nmtune' ? 'paper' : null,
    params: scalarFields(tuneParams.get(m) ?? {}),
  }));
  const backboneDetails = new Map<string, Array<{ key: string; value: number | string | null }>>();
  for (const b of r.backbones) {
    backboneDetails.set(b.id, [
      { key: 'flipped labels', value: `${b.flippedCount} of ${b.trainCount}` },
      { key: 'epochs', value: b.epochs },
      { key: 'pre-train test acc %', value: b.pretrainTestAccuracy === null ? null : Number((100 * b.pretrainTestAccuracy).toFixed(2)) },
      { key: 'train acc % (noisy labels)', value: Number((100 * b.trainAccuracyNoisy).toFixed(2)) },
    ]);
  }
  return { section, methods, backendsUsed: [r.backend.tf ?? '', r.backend.features], backboneDetails };
}
