/**
 * The builder's spec text (pure, no Vue). The text is the one source of truth: the form reads
 * what the text says, and a form edit changes only the key it owns, in place — YAML comments,
 * key order and every hand edit elsewhere stay as typed. Text with a syntax error is never
 * rewritten (the form waits until it parses again).
 */
import { Document, isNode, isScalar, parseDocument, visit } from 'yaml';
import type { ClassMap } from '../../../../shared/contract/labelNoise';
import type { StudySpec } from '../../../../shared/contract/study';
import { checkStudySpec, type StudySpecProblem } from '../../../../shared/contract/studyErrors';

export type SpecFormat = 'yaml' | 'json';
export type SpecPath = Array<string | number>;

/** YAML written the way people write it: `[0, 0.1]` for number lists, no line folding. */
const YAML_OPTIONS = { flowCollectionPadding: false, lineWidth: 0 } as const;

export interface ParsedText {
  /** The document as plain data; null when the text does not parse. */
  raw: unknown;
  /** The syntax error (with its line), null when the text parses. */
  syntaxError: string | null;
}

export function parseText(text: string, format: SpecFormat): ParsedText {
  if (format === 'json') {
    try {
      return { raw: JSON.parse(text) as unknown, syntaxError: null };
    } catch (err) {
      return { raw: null, syntaxError: `JSON: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  const doc = parseDocument(text);
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0].line;
    return { raw: null, syntaxError: `YAML${line ? ` line ${line}` : ''}: ${e.message.split('\n')[0]}` };
  }
  return { raw: doc.toJS() as unknown, syntaxError: null };
}

/** One thing wrong with the spec, as the CLI says it (src/shared/contract/studyErrors.ts). */
export type SpecIssue = StudySpecProblem;

/** The parsed text checked against the study schema: the spec, or every issue with its key path. */
export function validateSpec(raw: unknown): { spec: StudySpec | null; issues: SpecIssue[] } {
  const r = checkStudySpec(raw);
  return { spec: r.spec, issues: r.problems };
}

/** The spec as text in `format`. */
export function toText(value: unknown, format: SpecFormat): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  // Lists of numbers on one line (`seeds: [0, 1, 2]`), the way the form writes them too.
  const doc = new Document(value);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
  return doc.toString(YAML_OPTIONS);
}

const scalar = (x: unknown): boolean => x === null || typeof x !== 'object';
/** Lists of scalars and flat mappings (a class map `{"0": 6}`) are written on one line, as the docs write them. */
const inline = (v: unknown): boolean => (Array.isArray(v) ? v.every(scalar) : v !== null && typeof v === 'object' && Object.keys(v).length > 0 && Object.values(v).every(scalar));

function setPlain(obj: unknown, path: SpecPath, value: unknown): unknown {
  if (!path.length) return value;
  const [head, ...rest] = path;
  const base = (obj && typeof obj === 'object' ? obj : typeof head === 'number' ? [] : {}) as Record<string | number, unknown>;
  if (value === undefined && !rest.length) {
    if (Array.isArray(base) && typeof head === 'number') base.splice(head, 1);
    else delete base[head];
    return base;
  }
  base[head] = setPlain(base[head], rest, value);
  return base;
}

/**
 * The text with the key at `path` set to `value` (undefined: removed), everything else as it
 * was. Null when the text does not parse (then nothing may be written).
 */
export function setInText(text: string, format: SpecFormat, path: SpecPath, value: unknown): string | null {
  if (format === 'json') {
    const p = parseText(text, 'json');
    if (p.syntaxError) return null;
    return toText(setPlain(p.raw ?? {}, path, value), 'json');
  }
  // An empty text is an empty mapping to write into.
  const doc = text.trim() ? parseDocument(text) : new Document({});
  if (doc.errors.length) return null;
  if (value === undefined) doc.deleteIn(path);
  else doc.setIn(path, isNode(value) ? value : doc.createNode(value, { flow: inline(value) }));
  return doc.toString(YAML_OPTIONS);
}

/** {@link setInText} for several keys in turn (null when the text does not parse). */
export function setAllInText(text: string, format: SpecFormat, edits: ReadonlyArray<readonly [SpecPath, unknown]>): string | null {
  let out: string | null = text;
  for (const [path, value] of edits) {
    if (out === null) return null;
    out = setInText(out, format, path, value);
  }
  return out;
}

/** A change the builder's pre-training noise controls make (paper §4.1 symmetric, §7.3 asymmetric). */
export type PretrainNoiseChange = { type: 'symmetric' | 'asymmetric' } | { seed: number | null } | { map: ClassMap };

const NOISE: SpecPath = ['pretrain', 'noise'];

/**
 * The keys of `pretrain.noise` that `change` writes, given the parsed text: each control writes
 * its own key (a comment or a hand-typed `classes` there stays), symmetric drops `classes` and
 * `map` (the schema has no such keys there), a seed brings the default type along (the schema
 * needs it), an empty map is no map.
 */
export function pretrainNoiseEdits(raw: unknown, change: PretrainNoiseChange): Array<[SpecPath, unknown]> {
  const has = (key: string): boolean => getIn(raw, [...NOISE, key]) !== undefined;
  if ('type' in change) {
    const edits: Array<[SpecPath, unknown]> = [[[...NOISE, 'type'], change.type]];
    if (change.type === 'symmetric') for (const key of ['classes', 'map']) if (has(key)) edits.push([[...NOISE, key], undefined]);
    return edits;
  }
  if ('seed' in change) {
    const edits: Array<[SpecPath, unknown]> = change.seed !== null && !has('type') ? [[[...NOISE, 'type'], 'symmetric']] : [];
    return [...edits, [[...NOISE, 'seed'], change.seed ?? undefined]];
  }
  return [[[...NOISE, 'map'], Object.keys(change.map).length ? change.map : undefined]];
}

/** The same spec in the other format (null when the text does not parse; comments do not survive JSON). */
export function convertText(text: string, from: SpecFormat, to: SpecFormat): string | null {
  if (from === to) return text;
  const p = parseText(text, from);
  return p.syntaxError ? null : toText(p.raw, to);
}

/** The value at `path` of parsed data (undefined when absent). */
export function getIn(raw: unknown, path: SpecPath): unknown {
  let v: unknown = raw;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

/**
 * A list of numbers as typed in a form field ("0, 0.1, 0.2" or "0 1 2"); an error names what to
 * write instead (ranges such as "0-2" are written as a list).
 */
export function parseNumberList(s: string): { values: number[] | null; error: string | null } {
  const parts = s.split(/[\s,]+/).filter(Boolean);
  if (!parts.length) return { values: null, error: 'write at least one number' };
  const bad = parts.find((p) => !Number.isFinite(Number(p)));
  if (bad !== undefined) {
    const hint = /^\d+-\d+$/.test(bad) ? `; ranges are written as a list, e.g. ${bad.replace(/^(\d+)-(\d+)$/, (_, a: string, b: string) => Array.from({ length: Math.min(8, Number(b) - Number(a) + 1) }, (_x, i) => Number(a) + i).join(', '))}` : '';
    return { values: null, error: `"${bad}" is not a number${hint}` };
  }
  return { values: parts.map(Number), error: null };
}
