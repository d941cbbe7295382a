/**
 * What is wrong with a study spec, in sentences a person can act on: which key, what was
 * expected, what was found, and a suggestion where one is obvious ("0-2" as seeds → ranges are
 * written as a list; an unknown key → the nearest known one). The CLI (through core's
 * parseStudySpec) and the builder both describe a spec with {@link checkStudySpec}, so they say
 * the same thing.
 */
import { z } from 'zod';
import { StudySpec } from './study';

/** One thing wrong with a spec: the key path (`seeds`, `tasks[0].test`) and what is wrong there. */
export interface StudySpecProblem {
  path: string;
  message: string;
}

/** `seeds[2]`, `pretrain.gammas`, `(top level)`. */
export function specKeyPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(top level)';
}

/** A problem as one line: `seeds: expected array, got "0-2"; ...`. */
export function problemLine(p: StudySpecProblem): string {
  return `${p.path}: ${p.message}`;
}

function valueAt(raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = raw;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s && s.length > 60 ? `${s.slice(0, 57)}...` : (s ?? String(v));
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

type Issue = z.ZodError['issues'][number];

/** Step through wrappers (default, optional, nullable) to the schema inside. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  while (cur instanceof z.ZodDefault || cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.def.innerType as z.ZodType;
  return cur;
}

/** The keys a strict object at `path` accepts, found by walking the schema. */
function knownKeys(path: ReadonlyArray<PropertyKey>): string[] {
  let s: z.ZodType = StudySpec;
  for (const p of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(p)] ?? z.never();
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** Suggestions for a value that failed. */
function hint(path: ReadonlyArray<PropertyKey>, value: unknown, expected?: string): string {
  if (typeof value === 'string' && /^\s*\d+\s*(-|\.\.|:)\s*\d+\s*$/.test(value)) {
    const [a, b] = value.split(/-|\.\.|:/).map((x) => Number(x.trim()));
    const list = b >= a && b - a <= 10 ? Array.from({ length: b - a + 1 }, (_, i) => a + i) : [a, a + 1, '...', b];
    return `; ranges are written as a list, e.g. [${list.join(', ')}]`;
  }
  if (typeof value === 'number' && value > 1 && path.some((p) => p === 'gammas' || p === 'eta')) {
    return `; noise ratios are fractions in [0, 1] (${value} % is ${value / 100})`;
  }
  if (expected === 'array' && value !== undefined && (typeof value !== 'object' || value === null)) return `; write a list, e.g. [${shown(value)}]`;
  return '';
}

/** One zod issue as problems (an issue about several unknown keys is one problem per key). */
function describeIssue(issue: Issue, raw: unknown): StudySpecProblem[] {
  const path = specKeyPath(issue.path);
  const at = (message: string): StudySpecProblem[] => [{ path, message }];
  const value = valueAt(raw, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(issue.path);
      return issue.keys.map((k) => {
        const near = known.map((n) => ({ n, d: distance(k.toLowerCase(), n.toLowerCase()) })).sort((a, b) => a.d - b.d)[0];
        const mean = near && near.d <= Math.max(2, Math.floor(k.length / 3)) ? `; did you mean "${near.n}"?` : known.length ? `; known keys: ${known.join(', ')}` : '';
        return { path: specKeyPath([...issue.path, k]), message: `unknown key${mean}` };
      });
    }
    case 'invalid_type':
      if (value === undefined) return at(`required (${issue.expected} expected)`);
      return at(`expected ${issue.expected}, got ${shown(value)}${hint(issue.path, value, issue.expected)}`);
    case 'invalid_value':
      return at(`expected one of ${issue.values.map((o) => JSON.stringify(o)).join(', ')}, got ${shown(value)}`);
    case 'invalid_union': {
      // The branch the value nearly matches says the most: fewest issues, then the deepest one.
      const best = issue.errors
        .filter((e) => e.length > 0)
        .sort((a, b) => a.length - b.length || b[0].path.length - a[0].path.length)[0]?.[0];
      return best ? describeIssue({ ...best, path: [...issue.path, ...best.path] } as Issue, raw) : at(`does not match any accepted form, got ${shown(value)}`);
    }
    case 'too_small':
      if (issue.origin === 'array') return at(`needs at least ${String(issue.minimum)} entr${Number(issue.minimum) === 1 ? 'y' : 'ies'}`);
      return at(`must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}, got ${shown(value)}`);
    case 'too_big':
      return at(`must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}, got ${shown(value)}${hint(issue.path, value)}`);
    default:
      return at(`${issue.message}${value !== undefined ? `, got ${shown(value)}` : ''}${hint(issue.path, value)}`);
  }
}

/**
 * Check `raw` (parsed YAML or JSON, or the builder's object) against the study schema: the
 * spec with its defaults filled, or every problem once, in the schema's order.
 */
export function checkStudySpec(raw: unknown): { spec: StudySpec; problems: [] } | { spec: null; problems: StudySpecProblem[] } {
  const parsed = StudySpec.safeParse(raw);
  if (parsed.success) return { spec: parsed.data, problems: [] };
  const seen = new Set<string>();
  const problems: StudySpecProblem[] = [];
  for (const p of parsed.error.issues.flatMap((i) => describeIssue(i, raw))) {
    if (seen.has(problemLine(p))) continue;
    seen.add(problemLine(p));
    problems.push(p);
  }
  return { spec: null, problems };
}
