/**
 * Cluster profiles kept in the project: `slurm/profiles/<name>.yaml` (or `.yml`, `.json`),
 * validated against `SlurmProfile` with errors that name the file and the key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SlurmProfile } from '../../shared/contract/executors';
import { NmlabError } from '../../shared/errors';
import { resolveInside } from '../projects/resolveInside';
import { errnoCode, fsError } from '../fs/errors';

export const PROFILES_FOLDER = join('slurm', 'profiles');
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Validate a profile's content; `where` names it in errors. */
export function parseProfile(raw: unknown, where: string): SlurmProfile {
  const parsed = SlurmProfile.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
    throw new NmlabError('BAD_FILE', `${where} is not a valid Slurm profile: ${issues} (keys: nmlab, setup, defaults, stages, pollSeconds, signalSeconds; see docs/slurm.md)`);
  }
  return parsed.data;
}

/** Read profile `name` of the project. */
export async function loadProfile(projectDir: string, name: string): Promise<SlurmProfile> {
  if (!NAME.test(name)) throw new NmlabError('BAD_REQUEST', `"${name}" is not a profile name (letters, digits, ".", "-", "_")`);
  const tried: string[] = [];
  for (const ext of ['yaml', 'yml', 'json']) {
    const file = await resolveInside(projectDir, join(PROFILES_FOLDER, `${name}.${ext}`));
    tried.push(file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw fsError(err, 'read', file);
    }
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch (err) {
      throw new NmlabError('BAD_FILE', `${file} is neither valid YAML nor JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    return parseProfile(raw, file);
  }
  throw new NmlabError('NOT_FOUND', `no Slurm profile "${name}" in the project (looked for ${tried.join(', ')}); write one as described in docs/slurm.md`);
}
