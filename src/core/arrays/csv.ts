/**
 * Features as CSV: one sample per line, numeric feature columns and (optionally) an integer
 * label column. For users who keep features in spreadsheets or export them from other tools;
 * `.npy` is the format NMLab itself writes.
 *
 * Rules (documented in `nmlab spectrum --help`):
 * - comma-separated; fields may be double-quoted; blank lines are skipped;
 * - a header row is detected when any cell of the first row is not a number (or forced with
 *   `header: true/false`);
 * - the label column is chosen by name (needs a header) or 0-based index; negative indices
 *   count from the end. Without one, every column is a feature;
 * - every feature cell must parse as a finite number: errors say `file:line:column` (1-based,
 *   as editors show them).
 */
import { readFile } from 'node:fs/promises';
import { NmlabError } from '../../shared/errors';
import { MAX_CLASSES, checkLabelRange } from './validate';
import { fsError } from '../fs/errors';

/** Options of {@link parseFeaturesCsv}. */
export interface CsvOptions {
  /** Column holding the class label: header name or 0-based index (negative: from the end). */
  labelColumn?: string | number;
  /** Whether the first row is a header; default: detected. */
  header?: boolean;
  /** When given, labels must lie in [0, numClasses). */
  numClasses?: number;
}

/** A feature matrix read from CSV. */
export interface CsvFeatures {
  m: number;
  d: number;
  /** Row-major M×D, float64 (CSV text carries more digits than float32). */
  data: Float64Array;
  labels?: Int32Array;
  /** Header names of the feature columns, when the file has a header. */
  columns?: string[];
}

function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cur);
      cur = '';
    } else cur += ch;
  }
  cells.push(cur);
  return cells;
}

function parseNumber(cell: string): number {
  const t = cell.trim();
  // Number('') is 0 and Number('0x1f') is 31: require a decimal literal.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return NaN;
  return Number(t);
}

/** Parses CSV text; `file` names it in errors. */
export function parseFeaturesCsv(text: string, file: string, opts: CsvOptions = {}): CsvFeatures {
  const lines = text.split(/\r?\n/);
  const rows: { cells: string[]; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    rows.push({ cells: splitCsvLine(lines[i]), line: i + 1 });
  }
  if (rows.length === 0) throw new NmlabError('BAD_FILE', `${file}: the CSV file is empty`);
  const first = rows[0];
  const header = opts.header ?? first.cells.some((c) => Number.isNaN(parseNumber(c)));
  const names = header ? first.cells.map((c) => c.trim()) : undefined;
  const body = header ? rows.slice(1) : rows;
  const width = first.cells.length;
  if (body.length === 0) throw new NmlabError('BAD_FILE', `${file}: the CSV file has a header but no data rows`);

  let labelIdx = -1;
  if (opts.labelColumn !== undefined) {
    if (typeof opts.labelColumn === 'number') {
      labelIdx = opts.labelColumn < 0 ? width + opts.labelColumn : opts.labelColumn;
      if (!Number.isInteger(labelIdx) || labelIdx < 0 || labelIdx >= width) {
        throw new NmlabError('BAD_REQUEST', `${file}: label column ${opts.labelColumn} is out of range; the file has ${width} columns`);
      }
    } else {
      if (!names) throw new NmlabError('BAD_REQUEST', `${file}: label column "${opts.labelColumn}" given by name, but the file has no header row; pass a 0-based index instead`);
      labelIdx = names.indexOf(opts.labelColumn);
      if (labelIdx < 0) throw new NmlabError('BAD_REQUEST', `${file}: no column named "${opts.labelColumn}" in the header (${names.join(', ')})`);
    }
  }

  const m = body.length;
  const d = labelIdx >= 0 ? width - 1 : width;
  const data = new Float64Array(m * d);
  const labels = labelIdx >= 0 ? new Int32Array(m) : undefined;
  for (let r = 0; r < m; r++) {
    const { cells, line } = body[r];
    if (cells.length !== width) throw new NmlabError('BAD_FILE', `${file}:${line}: expected ${width} columns, found ${cells.length}`);
    let k = r * d;
    for (let c = 0; c < width; c++) {
      const v = parseNumber(cells[c]);
      if (Number.isNaN(v)) {
        const shown = cells[c].trim();
        const what = /^[+-]?(nan|inf(inity)?)$/i.test(shown) ? 'a non-finite value (NaN and Inf are not allowed in features)' : 'not a number';
        throw new NmlabError('BAD_FILE', `${file}:${line}:${c + 1}: "${shown.slice(0, 40)}" is ${what}`);
      }
      if (!Number.isFinite(v)) throw new NmlabError('BAD_FILE', `${file}:${line}:${c + 1}: "${cells[c].trim()}" overflows to ${v}`);
      if (c === labelIdx) {
        if (!Number.isInteger(v) || v < 0) throw new NmlabError('BAD_FILE', `${file}:${line}:${c + 1}: label "${cells[c].trim()}" is not a class index (0, 1, 2, …)`);
        // Checked before the int32 store, which would wrap 2⁴⁰ to 0.
        if (v >= MAX_CLASSES) throw new NmlabError('BAD_FILE', `${file}:${line}:${c + 1}: label ${cells[c].trim()} is above the ${MAX_CLASSES}-class limit (indices 0..${MAX_CLASSES - 1}); fix the label`);
        labels![r] = v;
      } else data[k++] = v;
    }
  }
  if (labels) checkLabelRange(labels, file, opts.numClasses);
  const columns = names ? names.filter((_, i) => i !== labelIdx) : undefined;
  return { m, d, data, labels, columns };
}

/** Reads a features CSV file (see {@link parseFeaturesCsv}). */
export async function readFeaturesCsv(file: string, opts: CsvOptions = {}): Promise<CsvFeatures> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw fsError(err, 'read', file);
  }
  return parseFeaturesCsv(text, file, opts);
}
