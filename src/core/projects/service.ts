/**
 * The project service (DESIGN §5): create, open, rename, close, forget, current, list recent.
 * A project is a folder with `nmlab.json` and the standard subfolders; the manifest is the
 * last thing written on create, so a folder with a manifest is always a complete project.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MANIFEST_VERSION, type ProjectInfo, type ProjectManifest, type RecentProject } from '../../shared/contract/projects';
import { NmlabError } from '../../shared/errors';
import { appVersion, nmlabHome } from '../paths';
import { errnoCode, fsError } from '../fs/errors';
import { MANIFEST_FILE, PROJECT_FOLDERS, readManifest, writeManifest } from './manifest';
import { RecentStore } from './recent';

export interface ProjectServiceOptions {
  /** Per-user folder holding recent.json; `nmlabHome()` by default. */
  home?: string;
}

export class ProjectService {
  readonly recent: RecentStore;
  private currentProject: ProjectInfo | null = null;

  constructor(options: ProjectServiceOptions = {}) {
    this.recent = new RecentStore(options.home ?? nmlabHome());
  }

  /** Create a project in a new or empty folder, open it and add it to the recent list. */
  async create(dirInput: string, name: string): Promise<ProjectInfo> {
    const dir = resolve(dirInput);
    const cleanName = checkName(name);
    let entries: string[] | null = null;
    try {
      const s = await stat(dir);
      if (!s.isDirectory()) throw new NmlabError('ALREADY_EXISTS', `${dir} is a file; pick a new or empty folder for the project`);
      entries = await readdir(dir);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw fsError(err, 'create a project in', dir);
    }
    if (entries?.includes(MANIFEST_FILE)) {
      throw new NmlabError('ALREADY_EXISTS', `${dir} is already an NMLab project; open it instead of creating it`);
    }
    if (entries && entries.length > 0) {
      throw new NmlabError('ALREADY_EXISTS', `${dir} is not empty (${entries.length} entries); pick a new or empty folder for the project`);
    }
    const now = new Date().toISOString();
    const manifest: ProjectManifest = {
      schemaVersion: MANIFEST_VERSION,
      name: cleanName,
      createdAt: now,
      updatedAt: now,
      app: { name: 'nmlab', version: appVersion() },
    };
    try {
      for (const folder of PROJECT_FOLDERS) await mkdir(join(dir, folder), { recursive: true });
      await writeManifest(dir, manifest);
    } catch (err) {
      // Leave no half-made project behind: remove what this call created, nothing else.
      if (entries === null) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      else for (const folder of PROJECT_FOLDERS) await rm(join(dir, folder), { recursive: true, force: true }).catch(() => undefined);
      throw fsError(err, 'create the project in', dir);
    }
    return this.becomeCurrent({ dir, manifest });
  }

  /** Open an existing project: validate (and migrate) its manifest, make it current. */
  async open(dirInput: string): Promise<ProjectInfo> {
    const dir = resolve(dirInput);
    await assertFolder(dir);
    const manifest = await readManifest(dir);
    // Folders a user deleted by hand come back, so code writing into them can rely on them.
    try {
      for (const folder of PROJECT_FOLDERS) await mkdir(join(dir, folder), { recursive: true });
    } catch {
      /* a read-only project still opens; writes will report their own errors */
    }
    return this.becomeCurrent({ dir, manifest });
  }

  /** Give a project a new name; the manifest is rewritten atomically. */
  async rename(dirInput: string, name: string): Promise<ProjectInfo> {
    const dir = resolve(dirInput);
    const cleanName = checkName(name);
    await assertFolder(dir);
    const old = await readManifest(dir);
    const manifest: ProjectManifest = { ...old, name: cleanName, updatedAt: new Date().toISOString() };
    await writeManifest(dir, manifest);
    const info = { dir, manifest };
    if (this.currentProject?.dir === dir) this.currentProject = info;
    await this.recent.rename(dir, cleanName);
    return structuredClone(info);
  }

  /** Close the project if it is the current one; the folder is untouched. */
  async close(dirInput: string): Promise<{ closed: boolean }> {
    const dir = resolve(dirInput);
    if (this.currentProject?.dir !== dir) return { closed: false };
    this.currentProject = null;
    return { closed: true };
  }

  /** Remove a project from the recent list; the folder is untouched. */
  async forget(dirInput: string): Promise<{ forgotten: boolean }> {
    return { forgotten: await this.recent.forget(resolve(dirInput)) };
  }

  current(): ProjectInfo | null {
    return this.currentProject ? structuredClone(this.currentProject) : null;
  }

  listRecent(): Promise<RecentProject[]> {
    return this.recent.list();
  }

  private async becomeCurrent(info: ProjectInfo): Promise<ProjectInfo> {
    this.currentProject = info;
    await this.recent.touch(info.dir, info.manifest.name);
    return structuredClone(info);
  }
}

function checkName(name: string): string {
  const clean = name.trim();
  if (!clean) throw new NmlabError('BAD_REQUEST', 'a project needs a name');
  if (clean.length > 200) throw new NmlabError('BAD_REQUEST', `a project name has at most 200 characters (got ${clean.length})`);
  return clean;
}

async function assertFolder(dir: string): Promise<void> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw new NmlabError('BAD_PROJECT', `${dir} is a file, not a project folder`);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new NmlabError('NOT_FOUND', `project folder ${dir} does not exist; it may have been moved or deleted`);
    throw fsError(err, 'open', dir);
  }
}
