/**
 * The runs table's model (pure, no Vue): one flat row per run — its summary joined with the
 * study job it ran — plus the column list, filtering, sorting and the config diff. Flat keys
 * use dots (`params.epochs`), like W&B and MLflow show nested configs.
 */
import type { RunSummary } from '../../../../shared/contract/experiments';

export type Cell = string | number | boolean | null;
export type RunRow = Record<string, Cell> & { id: string; status: string };

/** What the table knows about the study job a run belongs to. */
export interface RunOwner {
  studyId: string;
  studyName: string;
  /** The study job as the queue lists it (any stage; tune jobs carry backbone, γ, method, ...). */
  job: Record<string, unknown>;
}

/** Job fields that identify the job or repeat the queue's bookkeeping: not configuration. */
const JOB_SKIP = new Set(['key', 'index', 'deps', 'state', 'priority', 'attempts', 'runId', 'runIds', 'error', 'startedAt', 'endedAt', 'progress']);

/**
 * Nested objects as dotted keys; arrays of scalars as one comma-joined cell; arrays of objects
 * under their index (`targets.0.name`). Undefined values are left out.
 */
export function flatten(value: unknown, prefix = '', out: Record<string, Cell> = {}): Record<string, Cell> {
  if (value === undefined) return out;
  if (value === null || typeof value !== 'object') {
    if (prefix) out[prefix] = value as Cell;
    return out;
  }
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) {
      if (prefix) out[prefix] = value.map((v) => String(v)).join(', ');
      return out;
    }
    value.forEach((v, i) => flatten(v, prefix ? `${prefix}.${i}` : String(i), out));
    return out;
  }
  for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

/** Seconds from creation to end (null while running or when a date is missing). */
function seconds(s: RunSummary): number | null {
  if (!s.endedAt) return null;
  const d = (Date.parse(s.endedAt) - Date.parse(s.createdAt)) / 1000;
  return Number.isFinite(d) ? d : null;
}

/** One row per run: summary fields, the owning study, and the job's configuration flattened. */
export function buildRows(runs: RunSummary[], owners: Map<string, RunOwner>): RunRow[] {
  return runs.map((s) => {
    const owner = owners.get(s.id);
    const job: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(owner?.job ?? {})) if (!JOB_SKIP.has(k)) job[k] = v;
    // A study's tune job names the method column `label` and the base method `method`; the
    // table's "method" is the column people compare (lp, nmtune-reference, ...).
    if (typeof job.label === 'string') {
      job.baseMethod = job.method;
      job.method = job.label;
      delete job.label;
    }
    return {
      ...flatten(job),
      id: s.id,
      status: s.status,
      kind: s.kind,
      study: owner?.studyName ?? s.experimentId ?? null,
      studyId: owner?.studyId ?? s.experimentId ?? null,
      jobKey: s.jobKey,
      attempt: s.attempt,
      createdAt: s.createdAt,
      seconds: seconds(s),
      accuracy: s.accuracy,
      oodAccuracy: s.oodAccuracy,
      error: s.error,
    };
  });
}

export interface Column {
  key: string;
  label: string;
  numeric: boolean;
}

const LABELS: Record<string, string> = {
  id: 'Run',
  status: 'Status',
  kind: 'Kind',
  study: 'Study',
  studyId: 'Study id',
  jobKey: 'Job key',
  attempt: 'Attempt',
  createdAt: 'Started',
  seconds: 'Time',
  accuracy: 'Accuracy',
  oodAccuracy: 'OOD accuracy',
  error: 'Error',
  backbone: 'Backbone',
  gamma: 'γ',
  task: 'Task',
  taskType: 'Task type',
  method: 'Method',
  baseMethod: 'Base method',
  stage: 'Stage',
  title: 'Job',
  eta: 'η',
  replicate: 'Replicate',
  preset: 'Preset',
  fraction: 'Fraction',
  seed: 'Seed',
};

/** The columns shown before the user picks: what a researcher scans first. */
export const DEFAULT_COLUMNS = ['status', 'study', 'stage', 'backbone', 'gamma', 'task', 'method', 'fraction', 'seed', 'eta', 'accuracy', 'oodAccuracy', 'seconds', 'createdAt'];

/** Every key some row has (the run id is always shown, so not a choice), default columns first. */
export function columnsOf(rows: RunRow[]): Column[] {
  const keys = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) if (k !== 'id') keys.add(k);
  const ordered = [...DEFAULT_COLUMNS.filter((k) => keys.has(k)), ...[...keys].filter((k) => !DEFAULT_COLUMNS.includes(k)).sort()];
  return ordered.map((key) => ({
    key,
    label: LABELS[key] ?? key,
    numeric: rows.some((r) => typeof r[key] === 'number') && rows.every((r) => r[key] === null || r[key] === undefined || typeof r[key] === 'number'),
  }));
}

/** Filters of the table: exact values per key (empty: any), and free text over every cell. */
export interface RunFilter {
  equals: Record<string, string>;
  text: string;
}

/** The cell as the filters and the text search compare it. */
export function cellText(v: Cell | undefined): string {
  return v === null || v === undefined ? '' : String(v);
}

export function filterRows(rows: RunRow[], f: RunFilter): RunRow[] {
  const needle = f.text.trim().toLowerCase();
  return rows.filter(
    (r) =>
      Object.entries(f.equals).every(([k, v]) => v === '' || cellText(r[k]) === v) &&
      (!needle || Object.values(r).some((v) => cellText(v).toLowerCase().includes(needle))),
  );
}

/** The distinct values of a key, for a filter's options (numbers in numeric order). */
export function distinctValues(rows: RunRow[], key: string): string[] {
  const vals = [...new Set(rows.map((r) => r[key]).filter((v) => v !== null && v !== undefined))];
  const numeric = vals.every((v) => typeof v === 'number');
  return (numeric ? (vals as number[]).sort((a, b) => a - b) : vals.map(String).sort()).map(String);
}

/** Sorted copy; empty cells go last in both directions, ties keep the run order. */
export function sortRows(rows: RunRow[], key: string, dir: 'asc' | 'desc'): RunRow[] {
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => {
      const x = a.r[key];
      const y = b.r[key];
      const xe = x === null || x === undefined;
      const ye = y === null || y === undefined;
      if (xe || ye) return xe === ye ? a.i - b.i : xe ? 1 : -1;
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return c === 0 ? a.i - b.i : sign * c;
    })
    .map((e) => e.r);
}

export interface DiffLine {
  key: string;
  a: Cell | undefined;
  b: Cell | undefined;
}

/** A run's own identity in its config: always differs, so not part of a diff. */
const IDENTITY = new Set(['id', 'createdAt']);

/** The keys whose values differ between two configs (flattened), in key order; run identity left out. */
export function diffConfigs(a: unknown, b: unknown): DiffLine[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].filter((k) => !IDENTITY.has(k)).sort();
  return keys.filter((k) => fa[k] !== fb[k]).map((k) => ({ key: k, a: fa[k], b: fb[k] }));
}
