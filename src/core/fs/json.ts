/**
 * Reading a JSON file a project holds, checked against its zod schema. Errors name the file
 * and what is wrong with it (STYLE.md convention 7); a missing file is `null`, not an error.
 */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { NmlabError } from '../../shared/errors';
import { errnoCode, fsError } from './errors';

/** `what` names the document in messages ("experiment queue", "run status"). */
export async function readJsonChecked<T>(file: string, schema: z.ZodType<T>, what: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw fsError(err, 'read', file);
  }
  return parseJsonChecked(file, text, schema, what);
}

/** The text of `file`, parsed and checked against `schema`, for a caller that read it itself. */
export function parseJsonChecked<T>(file: string, text: string, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new NmlabError('BAD_FILE', `${file} is not valid JSON (${err instanceof Error ? err.message : String(err)}); the ${what} is damaged`);
  }
  return checkJson(file, raw, schema, what);
}

/** JSON already parsed from `file`, checked against `schema` (e.g. a stricter schema once its shape is known). */
export function checkJson<T>(file: string, raw: unknown, schema: z.ZodType<T>, what: string): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
    throw new NmlabError('BAD_FILE', `${file} is not a valid ${what}: ${issues}`);
  }
  return parsed.data;
}
