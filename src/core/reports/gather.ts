/**
 * Gathers a report (issue 6): everything about a project, or one experiment of it, read from
 * the project folder into one {@link ReportDocument} — environment, datasets and backbones
 * with their provenance, methods and hyper-parameters, comparison tables and charts, and every
 * run in an appendix. Only reads; the one computation is the spectra the demo does not store
 * (small feature sets only, see ./demo.ts). The renderer's report route draws this document,
 * whichever printer prints it.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EnvironmentReport } from '../../shared/contract/environment';
import type { ExperimentFile, QueueEntry } from '../../shared/contract/experiments';
import { ReportDocument, type ReportBackbone, type ReportDataset, type ReportMethod, type ReportQuery, type ReportRun, type ReportSection } from '../../shared/contract/reports';
import { legacyNote } from '../../shared/contract/legacy';
import { NmlabError } from '../../shared/errors';
import { listBackbones } from '../backbones/list';
import { listDatasets, readDatasetManifest } from '../datasets/store';
import { listExperimentIds, readExperiment, readQueue } from '../experiments/store';
import { readManifest } from '../projects/manifest';
import { listRuns, readRunResult } from '../runs/store';
import { runDir } from '../runs/files';
import { RESULT_FILE, RUNS_FOLDER } from '../runs/layout';
import { demoPart, readDemoResults } from './demo';
import { environmentSnapshot } from './environment';
import { experimentPart } from './experiment';
import { scalarFields } from './flatten';

export interface GatherOptions {
  /** The session's latest doctor report, shown with the environment. */
  doctor?: EnvironmentReport | null;
  /** Clock for `generatedAt` (tests). */
  now?: Date;
}

async function datasetsOf(projectDir: string): Promise<ReportDataset[]> {
  const out: ReportDataset[] = [];
  for (const d of await listDatasets(projectDir)) {
    const m = await readDatasetManifest(projectDir, d.id).catch(() => null);
    if (!m) continue;
    const noise = m.derived?.op === 'noise' ? m.derived.noise : null;
    out.push({
      id: m.id,
      name: m.name,
      kind: m.kind,
      count: m.count,
      classes: m.classes.length,
      domains: m.domains,
      split: m.split ? `${m.split.train} train / ${m.split.test} test` : null,
      parent: m.derived?.parent ?? null,
      op: m.derived?.op ?? null,
      noise: noise ? { type: noise.type, ratio: noise.ratio, seed: noise.seed, flippedCount: noise.flippedCount } : null,
    });
  }
  return out;
}

async function backbonesOf(projectDir: string, experiments: ExperimentFile[]): Promise<ReportBackbone[]> {
  const out: ReportBackbone[] = [];
  for (const b of await listBackbones(projectDir)) {
    const p = b.manifest.provenance;
    out.push({
      id: b.manifest.id,
      source: p?.source ?? 'unknown',
      gamma: p?.noise?.ratio ?? null,
      noiseType: p?.noise?.type ?? null,
      noiseSeed: p?.noise?.seed ?? null,
      dataset: p?.dataset ?? null,
      featureDim: b.manifest.output.featureDim,
      sha256: b.manifest.sha256.slice(0, 12),
      details: [],
    });
  }
  // Experiments may name backbones known only by their feature files (features/<id>/meta.json).
  for (const exp of experiments) {
    for (const b of exp.spec.backbones) {
      if (out.some((x) => x.id === b.id)) continue;
      out.push({ id: b.id, source: `features (experiment ${exp.id})`, gamma: b.gamma ?? null, noiseType: null, noiseSeed: null, dataset: null, featureDim: null, sha256: null, details: [] });
    }
  }
  return out.sort((a, b) => (a.gamma ?? -1) - (b.gamma ?? -1) || a.id.localeCompare(b.id));
}

/** Tuning parameters are listed once per method (Methods), not in every run's result; an upgraded result's `legacy` flag is said in words instead. */
const RESULT_SKIP = new Set(['params', 'legacy']);
/** The experiment job's key is the run's label; its feature paths are in the spec. */
const CONFIG_SKIP = new Set(['jobKey', 'experimentId', 'job']);

/** A short label for a run: its experiment job, or its kind with γ and method for demo stages. */
function runLabel(config: Record<string, unknown>): string {
  if (typeof config.jobKey === 'string') return config.jobKey;
  const parts: string[] = [];
  if (typeof config.gamma === 'number') parts.push(`γ=${Math.round(config.gamma * 1000) / 10}%`);
  if (typeof config.method === 'string') parts.push(config.method);
  return parts.join(' ');
}

async function readJsonOrNull(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
}

const resultFile = (id: string) => join(RUNS_FOLDER, id, RESULT_FILE);

/**
 * A run's result through the readers the app uses (a tuning result upgraded), with the fields
 * it lacks when an older NMLab wrote it; a damaged one is named in the notes with its file.
 */
async function resultOf(projectDir: string, id: string, kind: string, notes: string[]): Promise<{ result: unknown; missing: string[]; error: string | null }> {
  try {
    const read = await readRunResult(projectDir, id, kind);
    return { result: read?.result ?? null, missing: read?.missing ?? [], error: null };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    notes.push(`Run ${id}: ${resultFile(id)} could not be read: ${error}`);
    return { result: null, missing: [], error };
  }
}

/** One note per set of missing fields, naming the runs and their files. */
function legacyNotes(legacy: Map<string, string[]>): string[] {
  return [...legacy].map(([note, ids]) =>
    ids.length === 1 ? `Run ${ids[0]} (${resultFile(ids[0])}) was ${note}.` : `Runs ${ids.join(', ')} (${ids.map(resultFile).join(', ')}) were ${note}.`,
  );
}

/**
 * Every run of the project (or the given ones): experiment jobs and the demo's stages alike,
 * through the experiments' run reader, which accepts both id styles.
 */
async function runsOf(projectDir: string, only: Set<string> | null, notes: string[]): Promise<{ runs: ReportRun[]; tuneParams: Map<string, Record<string, unknown>> }> {
  const runs: ReportRun[] = [];
  const tuneParams = new Map<string, Record<string, unknown>>();
  const legacy = new Map<string, string[]>();
  for (const r of await listRuns(projectDir)) {
    if (only && !only.has(r.id)) continue;
    const dir = await runDir(projectDir, r.id);
    const config = ((await readJsonOrNull(join(dir, 'config.json'))) ?? {}) as Record<string, unknown>;
    const read = r.status === 'succeeded' ? await resultOf(projectDir, r.id, r.kind, notes) : null;
    const result = read?.result ?? null;
    const note = read?.missing.length ? legacyNote(read.missing) : null;
    if (note) legacy.set(note, [...(legacy.get(note) ?? []), r.id]);
    if (r.kind === 'demo.tune' && result && typeof result === 'object') {
      const { method, params } = result as { method?: unknown; params?: unknown };
      if (typeof method === 'string' && params && typeof params === 'object' && !tuneParams.has(method)) tuneParams.set(method, params as Record<string, unknown>);
    }
    const started = Date.parse(r.createdAt);
    const ended = r.endedAt ? Date.parse(r.endedAt) : NaN;
    runs.push({
      id: r.id,
      kind: r.kind,
      status: r.status,
      label: runLabel(config),
      createdAt: r.createdAt,
      seconds: Number.isFinite(started) && Number.isFinite(ended) ? Math.max(0, (ended - started) / 1000) : null,
      config: scalarFields(config, 24, 3, CONFIG_SKIP),
      result: read?.error
        ? [{ key: 'error', value: read.error }]
        : result
          ? [...(note ? [{ key: 'legacy', value: note }] : []), ...scalarFields(result, 32, 3, RESULT_SKIP)]
          : r.error
            ? [{ key: 'error', value: r.error }]
            : [],
    });
  }
  notes.push(...legacyNotes(legacy));
  return { runs, tuneParams };
}

/** Gather the report of a project, or of one experiment when `experimentId` is given. */
export async function gatherReport(query: ReportQuery, opts: GatherOptions = {}): Promise<ReportDocument> {
  const projectDir = resolve(query.projectDir);
  const experimentId = query.experimentId;
  const manifest = await readManifest(projectDir);
  const notes: string[] = [];
  const sections: ReportSection[] = [];
  let methods: ReportMethod[] = [];
  const backends: string[] = [];

  const experiments: Array<{ exp: ExperimentFile; entries: QueueEntry[] }> = [];
  const ids = experimentId ? [experimentId] : await listExperimentIds(projectDir);
  for (const id of ids) {
    try {
      const exp = await readExperiment(projectDir, id);
      experiments.push({ exp, entries: (await readQueue(projectDir, exp)).entries });
    } catch (err) {
      if (experimentId) throw err;
      notes.push(`Experiment ${id} could not be read and is left out: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  let backboneDetails = new Map<string, Array<{ key: string; value: number | string | null }>>();
  const onlyRuns = experimentId ? new Set(experiments.flatMap((e) => e.entries.flatMap((q) => q.runIds))) : null;
  const { runs, tuneParams } = await runsOf(projectDir, onlyRuns, notes);

  if (!experimentId) {
    const demo = await readDemoResults(projectDir, notes);
    if (demo) {
      const part = await demoPart(projectDir, demo, tuneParams, notes);
      sections.push(part.section);
      methods.push(...part.methods);
      backends.push(...part.backendsUsed);
      backboneDetails = part.backboneDetails;
    }
  }
  for (const { exp, entries } of experiments) {
    const part = await experimentPart(projectDir, exp, entries, notes);
    sections.push(part.section);
    backends.push(...part.backendsUsed);
    // The same label in two experiments keeps the first one's parameters.
    for (const m of part.methods) if (!methods.some((x) => x.label === m.label)) methods.push(m);
  }
  methods = methods.filter((m, i) => methods.findIndex((x) => x.label === m.label) === i);
  if (sections.length === 0) {
    notes.push(
      experimentId
        ? `Experiment ${experimentId} has no results yet.`
        : 'This project has no results yet: run `nmlab demo`, or create and run an experiment, then make the report again.',
    );
  }

  const backbones = await backbonesOf(projectDir, experiments.map((e) => e.exp));
  for (const b of backbones) b.details = backboneDetails.get(b.id) ?? [];
  const exp = experiments[0]?.exp;
  const doc = {
    schemaVersion: 1 as const,
    title: experimentId && exp ? exp.spec.name : manifest.name,
    subtitle: experimentId ? `Experiment ${experimentId} of project “${manifest.name}”` : 'NMLab project report',
    scope: experimentId ? ('experiment' as const) : ('project' as const),
    projectDir,
    projectName: manifest.name,
    experimentId: experimentId ?? null,
    generatedAt: (opts.now ?? new Date()).toISOString(),
    environment: environmentSnapshot(backends, opts.doctor ?? null),
    datasets: await datasetsOf(projectDir),
    backbones,
    methods,
    sections,
    runs,
    notes,
  };
  const parsed = ReportDocument.safeParse(doc);
  if (!parsed.success) {
    throw new NmlabError('INTERNAL', `the report of ${projectDir} does not match its schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
