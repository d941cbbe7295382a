/**
 * The comparison of a study (DESIGN §6, issue 10 item 2). Every number is a nested estimate:
 * tuning seeds averaged within each pre-training replicate, then the mean and its 95 %
 * Student-t interval over replicates (over seeds when a cell has one replicate, and the
 * estimate says so). Each cell also gets its headline accuracy minus the same cell at γ = 0,
 * paired by replicate; "best" only where its interval separates from the other methods';
 * and, across backbones, the paper's §5 correlations (SVE(F) ↔ ID accuracy, LSVR(F) ↔ OOD
 * accuracy; Figures 3 and 5), and a verdict on each of the paper's claims the data can speak to.
 *
 * The aggregation works on generic observations ({@link CompareObservation}: one fit's
 * numbers with its group keys, replicate and seed), so a job shape is one small adapter.
 */
import type { QueueEntry } from '../../shared/contract/experiments';
import type { TuneRunResult } from '../../shared/contract/tuning';
import type { Claim, CompareCorrelation, CompareMetric, CompareResult, CompareRow, Estimate } from '../../shared/contract/compare';
import { COMPARE_METRICS, CONFIDENCE, isLinearProbe } from '../../shared/contract/compare';
import { claimVerdict, correlation, mean, nestedEstimate, pairedDifference, separatedBest, type Observation } from '../stats';
import { readFitEvaluation } from '../runs/store';

/** One fit's numbers, with the keys the comparison groups and pairs by. */
export interface CompareObservation {
  /** The cell's backbone condition: a backbone, or the name shared by the replicates of one pre-training setting. */
  condition: string;
  /** The backbone that was tuned (one replicate of the condition). */
  backbone: string;
  gamma: number | null;
  /**
   * What pairs replicates across conditions (the pre-training seed of a study's backbones);
   * for imported backbones, the backbone itself (nothing pairs, so differences pair by seed).
   */
  replicate: string;
  task: string;
  taskType: 'id' | 'ood';
  method: string;
  fraction: number;
  seed: number;
  values: Partial<Record<CompareMetric, number | null>>;
  /** Accuracy on each OOD target domain. */
  domains: Record<string, number>;
  /** Set when an older NMLab wrote the fit's result: its run and the fields it lacks (contract/legacy.ts). */
  legacy?: { run: string; missing: string[] };
}

const NUL = '\u0000';
const cellKey = (o: { task: string; method: string; fraction: number }) => `${o.task}${NUL}${o.method}${NUL}${o.fraction}`;
const headlineMetric = (taskType: 'id' | 'ood'): CompareMetric => (taskType === 'ood' ? 'oodAccuracy' : 'accuracy');

function observations(obs: CompareObservation[], pick: (o: CompareObservation) => number | null | undefined): Observation[] {
  return obs.map((o) => ({ replicate: o.replicate, seed: o.seed, value: pick(o) }));
}

/**
 * Per backbone (a point of the §5 scatter), the mean over its seeds of x and of y. Backbones
 * in first-seen order; a backbone missing either value is left out.
 */
function scatter(obs: CompareObservation[], x: CompareMetric, y: CompareMetric): CompareCorrelation['points'] {
  const byBackbone = new Map<string, CompareObservation[]>();
  for (const o of obs) byBackbone.set(o.backbone, [...(byBackbone.get(o.backbone) ?? []), o]);
  const points: CompareCorrelation['points'] = [];
  for (const [backbone, list] of byBackbone) {
    const mx = list.map((o) => o.values[x]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const my = list.map((o) => o.values[y]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (mx.length && my.length) points.push({ backbone, gamma: list[0].gamma, x: mean(mx), y: mean(my) });
  }
  return points;
}

/** The legacy fits of a cell: the union of the fields they lack, and their runs; null when there are none. */
function legacyOf(list: CompareObservation[]): CompareRow['legacy'] {
  const legacy = list.flatMap((o) => (o.legacy ? [o.legacy] : []));
  if (legacy.length === 0) return null;
  return { missing: [...new Set(legacy.flatMap((l) => l.missing))], runs: [...new Set(legacy.map((l) => l.run))] };
}

/** Rows, paired differences, "best" flags and correlations from observations (pure). */
export function aggregateObservations(obs: CompareObservation[]): { rows: CompareRow[]; correlations: CompareCorrelation[]; claims: Claim[] } {
  const cells = new Map<string, CompareObservation[]>();
  for (const o of obs) {
    const k = `${o.condition}${NUL}${cellKey(o)}`;
    cells.set(k, [...(cells.get(k) ?? []), o]);
  }
  const rows: CompareRow[] = [];
  const cellObs = new Map<CompareRow, CompareObservation[]>();
  for (const list of cells.values()) {
    const first = list[0];
    const est = Object.fromEntries(COMPARE_METRICS.map((m) => [m, nestedEstimate(observations(list, (o) => o.values[m]))])) as Record<CompareMetric, Estimate | null>;
    const domainNames = [...new Set(list.flatMap((o) => Object.keys(o.domains)))];
    const domains: Record<string, Estimate> = {};
    for (const d of domainNames) {
      const e = nestedEstimate(observations(list, (o) => o.domains[d]));
      if (e) domains[d] = e;
    }
    const row: CompareRow = {
      backbone: first.condition,
      gamma: first.gamma,
      task: first.task,
      taskType: first.taskType,
      method: first.method,
      fraction: first.fraction,
      seeds: [...new Set(list.map((o) => o.seed))].sort((a, b) => a - b),
      replicates: [...new Set(list.map((o) => o.backbone))],
      ...est,
      domains,
      deltaVsClean: null,
      best: false,
      legacy: legacyOf(list),
    };
    rows.push(row);
    cellObs.set(row, list);
  }

  // Differences to the clean backbone: the same task × method × fraction at γ = 0.
  const clean = new Map(rows.filter((r) => r.gamma === 0).map((r) => [cellKey(r), r]));
  for (const r of rows) {
    const base = clean.get(cellKey(r));
    if (!base || r.gamma === null || r.gamma === 0) continue;
    const m = headlineMetric(r.taskType);
    r.deltaVsClean = pairedDifference(observations(cellObs.get(r)!, (o) => o.values[m]), observations(cellObs.get(base)!, (o) => o.values[m]));
  }

  // "Best" per line (condition × task × fraction), only where the intervals separate.
  const lines = new Map<string, CompareRow[]>();
  for (const r of rows) {
    const k = `${r.backbone}${NUL}${r.task}${NUL}${r.fraction}`;
    lines.set(k, [...(lines.get(k) ?? []), r]);
  }
  for (const line of lines.values()) {
    const i = separatedBest(line.map((r) => r[headlineMetric(r.taskType)]));
    if (i !== null) line[i].best = true;
  }

  // §5 across backbones: one point per backbone, per task × method × fraction.
  const correlations: CompareCorrelation[] = [];
  const groups = new Map<string, CompareObservation[]>();
  for (const o of obs) groups.set(cellKey(o), [...(groups.get(cellKey(o)) ?? []), o]);
  for (const list of groups.values()) {
    const { task, method, fraction, taskType } = list[0];
    const [x, y] = taskType === 'ood' ? (['backboneLsvr', 'oodAccuracy'] as const) : (['backboneSve', 'accuracy'] as const);
    const points = scatter(list, x, y);
    if (points.length < 2) continue;
    const xs = points.map((p) => p.x);
    const ys = points.map((p) => p.y);
    correlations.push({ task, method, fraction, x, y, points, pearson: correlation('pearson', xs, ys), spearman: correlation('spearman', xs, ys) });
  }
  return { rows, correlations, claims: claimsOf(rows, correlations, obs) };
}

/** The largest γ the "slight noise raises ID accuracy" claim reads (paper §4: 5–10 %). */
export const SLIGHT_NOISE = 0.1;

const pctLabel = (g: number) => `${Math.round(g * 1000) / 10} %`;
const unitsLabel = (e: Estimate) => `n = ${e.n} ${e.over === 'replicates' ? 'replicates' : 'tuning seeds'}`;

function differenceClaim(id: Claim['id'], statement: string, sign: 1 | -1, e: Estimate | null, basis: string): Claim[] {
  if (!e) return [];
  return [{ id, statement, sign, verdict: claimVerdict(e, sign), kind: 'difference', value: e.mean, lo: e.lo, hi: e.hi, n: e.n, basis: `${basis}; ${unitsLabel(e)}` }];
}

/**
 * The paper's claims, each read from its interval where the study has the data (issue 10
 * item 3): slight noise raises ID accuracy and more noise lowers OOD accuracy (§4, Figs. 2–3;
 * the smallest γ, when ≤ 10 %, and the largest γ against γ = 0, paired by replicate); SVE(F)
 * rises with ID accuracy and LSVR(F) falls as OOD accuracy rises (§5, Fig. 5; Pearson across
 * backbones);
 * NMTune beats MLP tuning (§6, Fig. 7; paired by backbone on the ID task). The noise and §5
 * claims read linear probing, as the paper does, or the first method when there is no LP.
 */
function claimsOf(rows: CompareRow[], correlations: CompareCorrelation[], obs: CompareObservation[]): Claim[] {
  const fraction = Math.max(...rows.map((r) => r.fraction));
  const methods = [...new Set(rows.map((r) => r.method))];
  const method = methods.find(isLinearProbe) ?? methods[0];
  const mine = rows.filter((r) => r.method === method && r.fraction === fraction);
  const idTask = mine.find((r) => r.taskType === 'id')?.task;
  const oodTask = mine.find((r) => r.taskType === 'ood')?.task;
  const withDelta = (task: string | undefined) => mine.filter((r) => r.task === task && r.deltaVsClean !== null).sort((a, b) => (a.gamma ?? 0) - (b.gamma ?? 0));
  const claims: Claim[] = [];
  // "Slight" as in the paper's Figs. 2–3: 5–10 %; a study whose smallest γ > 0 is larger does not test it.
  const slight = withDelta(idTask)[0];
  if (slight && slight.gamma! <= SLIGHT_NOISE) {
    claims.push(...differenceClaim('id-gain-slight-noise', 'Slight pre-training noise raises ID accuracy', 1, slight.deltaVsClean, `${method} on ${slight.task}: accuracy at γ = ${pctLabel(slight.gamma!)} minus γ = 0`));
  }
  const most = withDelta(oodTask).at(-1);
  if (most) {
    claims.push(...differenceClaim('ood-decline', 'More pre-training noise lowers OOD accuracy', -1, most.deltaVsClean, `${method} on ${most.task}: OOD accuracy at γ = ${pctLabel(most.gamma!)} minus γ = 0`));
  }
  for (const [id, task, sign, statement] of [
    ['sve-id', idTask, 1, 'Higher SVE(F) goes with higher ID accuracy'],
    ['lsvr-ood', oodTask, -1, 'Higher LSVR(F) goes with lower OOD accuracy'],
  ] as const) {
    const k = correlations.find((c) => c.task === task && c.method === method && c.fraction === fraction);
    if (!k?.pearson) continue;
    const p = k.pearson;
    claims.push({ id, statement, sign, verdict: claimVerdict(p, sign), kind: 'correlation', value: p.r, lo: p.lo, hi: p.hi, n: p.n, basis: `${method} on ${task}: Pearson r across ${p.n} backbones (Fisher-z interval)` });
  }
  const nmtune = methods.find((m) => m === 'nmtune' || m.startsWith('nmtune'));
  if (nmtune && methods.includes('mlp') && idTask) {
    // Each backbone is one unit (its seeds averaged); with a single backbone, tuning seeds pair.
    const pick = (m: string) =>
      obs.filter((o) => o.method === m && o.task === idTask && o.fraction === fraction).map((o) => ({ replicate: o.backbone, seed: o.seed, value: o.values.accuracy }));
    const e = pairedDifference(pick(nmtune), pick('mlp'));
    if (e) {
      const pairs = e.over === 'replicates' ? `paired by backbone; n = ${e.n} backbones` : `paired by tuning seed (one backbone); n = ${e.n} seeds`;
      claims.push({ id: 'nmtune-over-mlp', statement: 'NMTune beats MLP tuning', sign: 1, verdict: claimVerdict(e, 1), kind: 'difference', value: e.mean, lo: e.lo, hi: e.hi, n: e.n, basis: `${nmtune} minus mlp on ${idTask}, ID accuracy ${pairs}` });
    }
  }
  return claims;
}

/**
 * What the comparison reads of a tuning job: the fields every job shape has (an experiment
 * job, or a study graph's `tune` job, which adds `replicate`, `label` and `oodTasks`).
 */
export interface CompareFit {
  key: string;
  backbone: string;
  gamma: number | null;
  /** Pre-training replicate seed of a study-trained backbone; absent or null for imported backbones. */
  replicate?: number | null;
  task: string;
  /** `ood` for a task trained on a source domain and evaluated on targets; default `id`. */
  taskType?: 'id' | 'ood';
  /** OOD tasks this fit also serves (a study's `tune` job): each becomes its own OOD cell. */
  oodTasks?: string[];
  /** The column label (`label` when the job has one, else `method`). */
  method: string;
  label?: string;
  fraction: number;
  seed: number;
}

/** The numbers of a run result that the comparison reads. */
export type CompareFitResult = Pick<TuneRunResult, 'test' | 'targets' | 'oodAccuracy' | 'oodLsvr' | 'backboneSve' | 'backboneLsvr'>;

const gammaName = (g: number) => `γ=${Math.round(g * 1000) / 10}%`;
const meanOf = (xs: Array<number | undefined>): number | null => {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? mean(v) : null;
};

/**
 * The observations of one finished fit: its own task, and one OOD cell per OOD task it serves
 * (`oodTargets` maps an OOD task to its target names; see {@link targetsOf} when not given).
 * Replicates of a study-trained backbone share a condition named by γ, and pair by seed.
 */
export function observationsOfFit(fit: CompareFit, result: CompareFitResult, oodTargets: Record<string, string[]> = {}): CompareObservation[] {
  const pretrained = fit.replicate !== undefined && fit.replicate !== null;
  const base = {
    condition: pretrained && fit.gamma !== null ? gammaName(fit.gamma) : fit.backbone,
    backbone: fit.backbone,
    gamma: fit.gamma,
    replicate: pretrained ? `seed ${fit.replicate}` : fit.backbone,
    method: fit.label ?? fit.method,
    fraction: fit.fraction,
    seed: fit.seed,
  };
  const own: CompareObservation = {
    ...base,
    task: fit.task,
    taskType: fit.taskType ?? 'id',
    values: {
      accuracy: result.test?.accuracy,
      macroF1: result.test?.macroF1,
      oodAccuracy: result.oodAccuracy,
      // SVE on the ID test (Figure 3a); LSVR on the OOD targets (Figure 3b), else on the test set.
      sve: result.test?.sve ?? result.targets[0]?.sve,
      lsvr: result.oodLsvr ?? result.test?.lsvr,
      backboneSve: result.backboneSve,
      backboneLsvr: result.backboneLsvr,
    },
    domains: fit.taskType === 'ood' ? Object.fromEntries(result.targets.map((t) => [t.name, t.accuracy])) : {},
  };
  if (fit.taskType === 'ood' || !fit.oodTasks?.length) return [own];
  // A study fit: the ID cell reads the test set only; each OOD task reads its own targets.
  own.values.oodAccuracy = null;
  own.values.lsvr = result.test?.lsvr;
  own.values.backboneLsvr = result.test?.backboneLsvr;
  const out = [own];
  for (const task of fit.oodTasks) {
    const targets = targetsOf(task, fit.oodTasks, result.targets, oodTargets[task]);
    if (targets.length === 0) continue;
    out.push({
      ...base,
      task,
      taskType: 'ood',
      values: {
        oodAccuracy: meanOf(targets.map((t) => t.accuracy)),
        lsvr: meanOf(targets.map((t) => t.lsvr)),
        backboneLsvr: meanOf(targets.map((t) => t.backboneLsvr)) ?? result.backboneLsvr,
        backboneSve: result.backboneSve,
      },
      domains: Object.fromEntries(targets.map((t) => [domainName(task, t.name), t.accuracy])),
    });
  }
  return out;
}

/**
 * The targets of one OOD task among a fit's: those `names` lists when given; else all of them
 * when the fit serves one OOD task; else those named `<task>:…` (a study graph's default names).
 */
function targetsOf<T extends { name: string }>(task: string, tasks: string[], targets: T[], names?: string[]): T[] {
  if (names) return targets.filter((t) => names.includes(t.name));
  if (tasks.length === 1) return targets;
  return targets.filter((t) => t.name.startsWith(`${task}:`));
}

/** A target's column name: without its task prefix (`synth-ood:blur-3` → `blur-3`). */
const domainName = (task: string, name: string) => (name.startsWith(`${task}:`) ? name.slice(task.length + 1) : name);

/** What names the comparison. */
export interface CompareHeader {
  experimentId: string;
  name: string;
  /** The study's layout (`noise-study`, `method-comparison` or `custom`). */
  preset: CompareResult['preset'];
}

/** The comparison from observations (pure): `total` is the number of fits the study has. */
export function compareResult(header: CompareHeader, obs: CompareObservation[], finished: number, total: number): CompareResult {
  const { rows, correlations, claims } = aggregateObservations(obs);
  return { ...header, rows, correlations, claims, confidence: CONFIDENCE, finished, total };
}

/**
 * The comparison of fits: reads the result of every succeeded fit in `fits` (a study's tuning
 * jobs) and aggregates them; a fit whose result an older NMLab wrote flags its cells (`legacy`).
 */
export async function compareFits(
  projectDir: string,
  header: CompareHeader,
  fits: CompareFit[],
  entries: QueueEntry[],
  oodTargets: Record<string, string[]> = {},
): Promise<CompareResult> {
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const obs: CompareObservation[] = [];
  let finished = 0;
  for (const fit of fits) {
    const entry = byKey.get(fit.key);
    if (entry?.state !== 'succeeded' || !entry.runId) continue;
    const result = await readFitEvaluation(projectDir, entry.runId).catch(() => null);
    if (!result) continue;
    finished++;
    const legacy = result.missing.length ? { run: entry.runId, missing: result.missing } : undefined;
    obs.push(...observationsOfFit(fit, result, oodTargets).map((o) => ({ ...o, legacy })));
  }
  return compareResult(header, obs, finished, fits.length);
}

export { compareToCsv } from '../../shared/contract/compare';

/** The comparison of an experiment file (either schema): its tuning fits, named by its id, name and layout. */
export async function compareExperiment(
  projectDir: string,
  exp: { id: string; spec: { name: string }; jobs: readonly object[] },
  entries: QueueEntry[],
  oodTargets: Record<string, string[]> = {},
): Promise<CompareResult> {
  return compareFits(projectDir, { experimentId: exp.id, name: exp.spec.name, preset: layoutOf(exp.spec) }, tuneFits(exp.jobs), entries, oodTargets);
}

/** The tuning fits among an experiment's jobs: every job of a first-schema experiment, the `tune` jobs of a study graph. */
export function tuneFits<J extends object>(jobs: readonly J[]): Array<J & CompareFit> {
  return jobs.filter((j): j is J & CompareFit => {
    const stage = (j as { stage?: unknown }).stage;
    return (stage === undefined || stage === 'tune') && typeof (j as { backbone?: unknown }).backbone === 'string';
  });
}

/** The layout an experiment's spec leads with (`layout` in study specs, `preset` in the first schema). */
export function layoutOf(spec: object): CompareHeader['preset'] {
  const s = spec as { layout?: unknown; preset?: unknown };
  const v = s.layout ?? s.preset;
  return v === 'noise-study' || v === 'method-comparison' ? v : 'custom';
}
