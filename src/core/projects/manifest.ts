/**
 * Reading and writing `nmlab.json`, the project manifest (DESIGN §5). Reading validates
 * against the contract's `ProjectManifest` schema after migrating older schema versions
 * forward, one step at a time; every failure names the file.
 */
import { readFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MANIFEST_VERSION, ProjectManifest } from '../../shared/contract/projects';
import { NmlabError } from '../../shared/errors';
import { writeJsonAtomic } from '../fs/atomic';
import { errnoCode, fsError } from '../fs/errors';

export const MANIFEST_FILE = 'nmlab.json';

/** Folders every project has (DESIGN §5). */
export const PROJECT_FOLDERS = ['datasets', 'backbones', 'features', 'runs', 'reports'] as const;

/**
 * One migration per schema version: `MIGRATIONS[n]` turns a version-n manifest into version
 * n+1. Version 1 is the first, so the chain is empty today; the next schema change adds
 * `MIGRATIONS[1]` here and bumps MANIFEST_VERSION.
 */
export type ManifestMigration = (raw: Record<string, unknown>) => Record<string, unknown>;
export const MIGRATIONS: Readonly<Record<number, ManifestMigration>> = {};

export function manifestPath(dir: string): string {
  return join(dir, MANIFEST_FILE);
}

/**
 * The one check every writer into a project makes first (issue 12 item 5): `dir` must already
 * hold `nmlab.json`. Creating a project is explicit (`nmlab project create`, the Projects page),
 * so no command builds a project tree in an arbitrary folder. Synchronous so constructors can
 * call it; it only stats two paths.
 */
export function requireProject(dir: string): void {
  const abs = resolve(dir);
  let isDir: boolean;
  try {
    isDir = statSync(abs).isDirectory();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new NmlabError('NOT_FOUND', `project folder ${abs} does not exist; create a project with \`nmlab project create ${dir} --name NAME\``);
    throw fsError(err, 'open the project', abs);
  }
  if (!isDir) throw new NmlabError('BAD_PROJECT', `${abs} is a file, not a project folder`);
  if (!existsSync(manifestPath(abs))) {
    throw new NmlabError('BAD_PROJECT', `${abs} is not an NMLab project (no ${MANIFEST_FILE}); create one there with \`nmlab project create ${dir} --name NAME\` or pick the project's folder`);
  }
}

/**
 * Bring a parsed manifest object up to `target`. Exposed with its migration table as a
 * parameter so the chain can be tested before the first real migration exists.
 */
export function migrateManifest(
  raw: Record<string, unknown>,
  file: string,
  migrations: Readonly<Record<number, ManifestMigration>> = MIGRATIONS,
  target: number = MANIFEST_VERSION,
): { manifest: Record<string, unknown>; migratedFrom: number | null } {
  const version = raw.schemaVersion;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new NmlabError('BAD_FILE', `${file} has no valid "schemaVersion" (found ${JSON.stringify(version)}); it is not an NMLab manifest or it was damaged`);
  }
  if (version > target) {
    throw new NmlabError('UNSUPPORTED', `${file} has schemaVersion ${version}, newer than this NMLab understands (${target}); update NMLab to open this project`);
  }
  let current = raw;
  for (let v = version; v < target; v++) {
    const step = migrations[v];
    if (!step) throw new NmlabError('INTERNAL', `no migration from manifest schemaVersion ${v} to ${v + 1} (file ${file})`);
    current = { ...step(current), schemaVersion: v + 1 };
  }
  return { manifest: current, migratedFrom: version === target ? null : version };
}

/**
 * Read, migrate and validate `<dir>/nmlab.json`. A manifest migrated from an older version is
 * written back (atomically) so later opens, and older copies of the folder, agree.
 */
export async function readManifest(dir: string): Promise<ProjectManifest> {
  const file = manifestPath(dir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NmlabError('BAD_PROJECT', `${dir} is not an NMLab project: ${file} is missing; create a project there with \`nmlab project create\``);
    }
    throw fsError(err, 'read', file);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new NmlabError('BAD_FILE', `${file} is not valid JSON (${err instanceof Error ? err.message : String(err)}); restore it from a backup or fix it by hand`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new NmlabError('BAD_FILE', `${file} must hold a JSON object, not ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
  }
  const { manifest, migratedFrom } = migrateManifest(parsed as Record<string, unknown>, file);
  const result = ProjectManifest.safeParse(manifest);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new NmlabError('BAD_FILE', `${file} is not a valid NMLab manifest (${issues}); fix the named fields or restore the file from a backup`);
  }
  if (migratedFrom !== null) await writeManifest(dir, result.data);
  return result.data;
}

export async function writeManifest(dir: string, manifest: ProjectManifest): Promise<void> {
  const file = manifestPath(dir);
  try {
    await writeJsonAtomic(file, manifest);
  } catch (err) {
    throw fsError(err, 'write', file);
  }
}
