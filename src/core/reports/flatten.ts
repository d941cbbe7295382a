/**
 * Run configs and results have kind-specific shapes; the report's appendix shows their
 * scalars as `key: value` pairs. Arrays (spectra, transition matrices, histories) and
 * bookkeeping keys are left out: they are on disk, and a page of numbers helps nobody.
 */
import type { ReportField, ReportScalar } from '../../shared/contract/reports';

/** Bookkeeping of the run itself, skipped at the top level only (`evals.id` is a domain, not an id). */
const TOP_SKIP = new Set(['id', 'kind', 'createdAt', 'stageKey', 'demo']);
const SKIP = new Set(['history', 'transitionMatrix', 'singularValues', 'backboneSingularValues', 'file', 'dir']);

/** Scalar leaves of `value` as dotted keys, depth-first, at most `max` of them. */
export function scalarFields(value: unknown, max = 40, depth = 3, skip: ReadonlySet<string> = new Set()): ReportField[] {
  const out: ReportField[] = [];
  const walk = (v: unknown, key: string, d: number): void => {
    if (out.length >= max) return;
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      if (key) out.push({ key, value: clip(v) });
      return;
    }
    if (Array.isArray(v)) {
      // Short lists of scalars read well inline (gammas, fractions, seeds); the rest is skipped.
      if (v.length > 0 && v.length <= 8 && v.every((x) => typeof x === 'number' || typeof x === 'string')) out.push({ key, value: v.join(', ') });
      return;
    }
    if (typeof v === 'object' && d > 0) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (SKIP.has(k) || skip.has(k) || (!key && TOP_SKIP.has(k))) continue;
        walk(x, key ? `${key}.${k}` : k, d - 1);
      }
    }
  };
  walk(value, '', depth);
  return out;
}

function clip(v: ReportScalar): ReportScalar {
  return typeof v === 'string' && v.length > 120 ? `${v.slice(0, 117)}…` : v;
}
