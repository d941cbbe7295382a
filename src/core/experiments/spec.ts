/**
 * Reading a study spec (YAML or JSON text, or an object from the builder) with errors a person
 * can act on, described by src/shared/contract/studyErrors.ts: the builder shows the same lines.
 */
import { parse as parseYaml } from 'yaml';
import type { StudySpec } from '../../shared/contract/study';
import { checkStudySpec, problemLine } from '../../shared/contract/studyErrors';
import { NmlabError } from '../../shared/errors';

/** Validate a spec object, naming `where` it came from. */
export function parseStudySpec(raw: unknown, where: string): StudySpec {
  const checked = checkStudySpec(raw);
  if (!checked.spec) throw new NmlabError('BAD_REQUEST', `${where} is not a valid study spec:\n  ${checked.problems.map(problemLine).join('\n  ')}\n(see docs/study-spec.md)`);
  const spec = checked.spec;
  if (spec.backbones.length === 0 && !spec.pretrain) throw new NmlabError('BAD_REQUEST', `${where}: name backbones (project ids under "backbones") or a "pretrain" axis that makes them`);
  if (spec.tasks.length === 0 && spec.embeddings.length === 0) throw new NmlabError('BAD_REQUEST', `${where}: name at least one task under "tasks" (a project dataset and its train/test split)`);
  return spec;
}

/** Parse spec text: YAML (a superset of JSON). */
export function parseStudyText(text: string, where: string): StudySpec {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new NmlabError('BAD_FILE', `${where} is neither valid YAML nor JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseStudySpec(raw, where);
}
