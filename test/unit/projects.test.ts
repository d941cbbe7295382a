import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProjectService } from '../../src/core/projects/service';
import { resolveInside } from '../../src/core/projects/resolveInside';
import { migrateManifest } from '../../src/core/projects/manifest';
import { createDirectClient, createLabBackend } from '../../src/core/backend';
import { MANIFEST_VERSION, ProjectManifest } from '../../src/shared/contract/projects';
import { NmlabError } from '../../src/shared/errors';
import { nmlabHome } from '../../src/core/paths';
import { homedir } from 'node:os';

let tmp: string;
let home: string;

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-projects-'));
  home = join(tmp, 'home');
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Run `fn` and return the NmlabError it rejects with (fails the test if it resolves). */
async function rejection(fn: () => Promise<unknown>): Promise<NmlabError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NmlabError);
    return err as NmlabError;
  }
  throw new Error('expected a rejection');
}

/** Every file under `dir`, recursively, relative. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await walk(join(dir, e.name))).map((f) => join(e.name, f)));
    else out.push(e.name);
  }
  return out;
}

describe('ProjectService', () => {
  it('creates a project folder with the manifest and the standard subfolders', async () => {
    const svc = new ProjectService({ home });
    const dir = join(tmp, 'p');
    const info = await svc.create(dir, '  Noise study  ');
    expect(info.dir).toBe(dir);
    expect(info.manifest.name).toBe('Noise study');
    expect(info.manifest.schemaVersion).toBe(MANIFEST_VERSION);
    const onDisk = ProjectManifest.parse(JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')));
    expect(onDisk).toEqual(info.manifest);
    expect((await readdir(dir)).sort()).toEqual(['backbones', 'datasets', 'features', 'nmlab.json', 'reports', 'runs']);
    expect(svc.current()?.dir).toBe(dir);
  });

  it('creates in an existing empty folder but refuses a non-empty folder, a project and a file', async () => {
    const svc = new ProjectService({ home });
    const empty = join(tmp, 'empty');
    await mkdir(empty);
    await expect(svc.create(empty, 'ok')).resolves.toMatchObject({ dir: empty });

    const again = await rejection(() => svc.create(empty, 'twice'));
    expect(again.code).toBe('ALREADY_EXISTS');
    expect(again.message).toContain('already an NMLab project');

    const full = join(tmp, 'full');
    await mkdir(full);
    await writeFile(join(full, 'notes.txt'), 'x');
    const notEmpty = await rejection(() => svc.create(full, 'x'));
    expect(notEmpty.code).toBe('ALREADY_EXISTS');
    expect(notEmpty.message).toContain(full);
    expect(await readdir(full)).toEqual(['notes.txt']);

    const file = join(tmp, 'file');
    await writeFile(file, 'x');
    expect((await rejection(() => svc.create(file, 'x'))).message).toContain('is a file');
  });

  it('reopens a project from a fresh service and lists it as recent', async () => {
    const dir = join(tmp, 'p');
    const created = await new ProjectService({ home }).create(dir, 'First');
    const svc = new ProjectService({ home });
    expect(svc.current()).toBeNull();
    const opened = await svc.open(dir);
    expect(opened.manifest).toEqual(created.manifest);
    const recent = await svc.listRecent();
    expect(recent.map((r) => [r.dir, r.name, r.available])).toEqual([[dir, 'First', true]]);
  });

  it('renames persistently and updates the recent list', async () => {
    const dir = join(tmp, 'p');
    const svc = new ProjectService({ home });
    const created = await svc.create(dir, 'Old');
    const renamed = await svc.rename(dir, 'New name');
    expect(renamed.manifest.name).toBe('New name');
    expect(renamed.manifest.createdAt).toBe(created.manifest.createdAt);
    expect(Date.parse(renamed.manifest.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.manifest.updatedAt));
    expect(svc.current()?.manifest.name).toBe('New name');

    const reopened = await new ProjectService({ home }).open(dir);
    expect(reopened.manifest.name).toBe('New name');
    expect((await new ProjectService({ home }).listRecent())[0].name).toBe('New name');
  });

  it('lists newest first, keeps vanished folders as unavailable, and forgets on request', async () => {
    const svc = new ProjectService({ home });
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    await svc.create(a, 'A');
    await new Promise((r) => setTimeout(r, 5));
    await svc.create(b, 'B');
    expect((await svc.listRecent()).map((r) => r.name)).toEqual(['B', 'A']);

    await rm(a, { recursive: true });
    const afterRemoval = await svc.listRecent();
    expect(afterRemoval.map((r) => [r.name, r.available])).toEqual([['B', true], ['A', false]]);

    expect(await svc.forget(a)).toEqual({ forgotten: true });
    expect(await svc.forget(a)).toEqual({ forgotten: false });
    expect((await svc.listRecent()).map((r) => r.name)).toEqual(['B']);

    const stored = JSON.parse(await readFile(join(home, 'recent.json'), 'utf8'));
    expect(stored.projects.map((p: { dir: string }) => p.dir)).toEqual([b]);
  });

  it('closes only the current project', async () => {
    const svc = new ProjectService({ home });
    const dir = join(tmp, 'p');
    await svc.create(dir, 'P');
    expect(await svc.close(join(tmp, 'other'))).toEqual({ closed: false });
    expect(await svc.close(dir)).toEqual({ closed: true });
    expect(svc.current()).toBeNull();
    expect(await svc.close(dir)).toEqual({ closed: false });
  });

  it('names the file when the manifest is missing, corrupt, invalid or too new', async () => {
    const svc = new ProjectService({ home });
    const dir = join(tmp, 'p');
    await svc.create(dir, 'P');
    const file = join(dir, 'nmlab.json');

    await writeFile(file, '{"schemaVersion": 1, "name": ');
    const corrupt = await rejection(() => svc.open(dir));
    expect(corrupt.code).toBe('BAD_FILE');
    expect(corrupt.message).toContain(file);
    expect(corrupt.message).toContain('not valid JSON');

    await writeFile(file, JSON.stringify({ schemaVersion: 1, createdAt: 'x', updatedAt: 'x', app: { name: 'nmlab', version: '1' } }));
    const invalid = await rejection(() => svc.open(dir));
    expect(invalid.code).toBe('BAD_FILE');
    expect(invalid.message).toContain(file);
    expect(invalid.message).toMatch(/name:/);

    await writeFile(file, JSON.stringify({ schemaVersion: MANIFEST_VERSION + 1, name: 'future' }));
    const future = await rejection(() => svc.open(dir));
    expect(future.code).toBe('UNSUPPORTED');
    expect(future.message).toContain(file);

    await writeFile(file, '[]');
    expect((await rejection(() => svc.open(dir))).message).toContain(file);

    await rm(file);
    const missing = await rejection(() => svc.open(dir));
    expect(missing.code).toBe('BAD_PROJECT');
    expect(missing.message).toContain(file);

    const gone = await rejection(() => svc.open(join(tmp, 'nowhere')));
    expect(gone.code).toBe('NOT_FOUND');
  });

  it('migrates older manifests forward one version at a time', () => {
    const chain = {
      1: (m: Record<string, unknown>) => ({ ...m, title: m.name }),
      2: (m: Record<string, unknown>) => ({ ...m, tags: [] }),
    };
    const { manifest, migratedFrom } = migrateManifest({ schemaVersion: 1, name: 'x' }, 'f.json', chain, 3);
    expect(manifest).toEqual({ schemaVersion: 3, name: 'x', title: 'x', tags: [] });
    expect(migratedFrom).toBe(1);
    expect(migrateManifest({ schemaVersion: 3 }, 'f.json', chain, 3).migratedFrom).toBeNull();
    expect(() => migrateManifest({ schemaVersion: 1 }, 'f.json', {}, 2)).toThrow(/no migration from manifest schemaVersion 1/);
    expect(() => migrateManifest({ schemaVersion: '1' }, 'f.json', chain, 3)).toThrow(/f\.json has no valid "schemaVersion"/);
  });

  it('writes atomically: no temporary files are left, even under concurrent renames', async () => {
    const svc = new ProjectService({ home });
    const dir = join(tmp, 'p');
    await svc.create(dir, 'P');
    const names = Array.from({ length: 12 }, (_, i) => `name ${i}`);
    await Promise.all(names.map((n) => svc.rename(dir, n)));
    const manifest = ProjectManifest.parse(JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')));
    expect(names).toContain(manifest.name);
    const leftovers = [...(await walk(dir)), ...(await walk(home))].filter((f) => f.endsWith('.tmp'));
    expect(leftovers).toEqual([]);
    expect(await walk(home)).toEqual(['recent.json']);
  });

  it('survives a damaged recent list by setting it aside', async () => {
    await mkdir(home, { recursive: true });
    await writeFile(join(home, 'recent.json'), 'not json');
    const svc = new ProjectService({ home });
    expect(await svc.listRecent()).toEqual([]);
    await svc.create(join(tmp, 'p'), 'P');
    expect((await svc.listRecent()).map((r) => r.name)).toEqual(['P']);
    const files = await readdir(home);
    expect(files.some((f) => f.startsWith('recent.json.corrupt-'))).toBe(true);
  });
});

describe('resolveInside', () => {
  it('resolves relative paths inside the project, existing or not', async () => {
    const dir = join(tmp, 'p');
    await mkdir(join(dir, 'runs'), { recursive: true });
    expect(await resolveInside(dir, 'runs/r1/config.json')).toBe(join(dir, 'runs', 'r1', 'config.json'));
    expect(await resolveInside(dir, 'datasets/../runs')).toBe(join(dir, 'runs'));
    expect(await resolveInside(dir, '.')).toBe(dir);
  });

  it('rejects absolute paths, climbing out and symbolic links that leave the project', async () => {
    const dir = join(tmp, 'p');
    const outside = join(tmp, 'outside');
    await mkdir(join(dir, 'datasets'), { recursive: true });
    await mkdir(outside);
    await symlink(outside, join(dir, 'datasets', 'escape'));
    await symlink(join(dir, 'datasets'), join(dir, 'inner'));

    for (const bad of ['/etc/passwd', '../outside/x', 'runs/../../outside', 'datasets/escape/file.npy', 'datasets/escape', 'C:\\Windows', 'a\0b']) {
      const err = await rejection(() => resolveInside(dir, bad));
      expect(err.code, bad).toBe('PATH_ESCAPE');
    }
    // A link that stays inside the project is fine.
    expect(await resolveInside(dir, 'inner/x.npy')).toBe(join(dir, 'inner', 'x.npy'));
  });
});

describe('projects through the direct client', () => {
  it('validates requests with the contract and shares state with the backend', async () => {
    const backend = createLabBackend({ home });
    const api = createDirectClient(backend);
    try {
      const dir = join(tmp, 'p');
      const err = await rejection(() => api.projects.create({ dir, name: '   ' }));
      expect(err.code).toBe('BAD_REQUEST');
      expect(err.message).toContain('nmlab:projects.create');

      const info = await api.projects.create({ dir, name: 'Via client' });
      expect(await api.projects.current({})).toEqual(info);
      expect((await api.projects.listRecent({}))[0]).toMatchObject({ dir, name: 'Via client', available: true });
      expect(await api.projects.close({ dir })).toEqual({ closed: true });
      expect(await api.projects.current({})).toBeNull();
    } finally {
      await backend.dispose();
    }
  });
});

describe('nmlabHome', () => {
  it('prefers NMLAB_HOME, then XDG_CONFIG_HOME/nmlab, then ~/.config/nmlab', () => {
    expect(nmlabHome({ NMLAB_HOME: '/srv/lab', XDG_CONFIG_HOME: '/xdg' })).toBe('/srv/lab');
    expect(nmlabHome({ XDG_CONFIG_HOME: '/xdg' })).toBe(join('/xdg', 'nmlab'));
    expect(nmlabHome({ NMLAB_HOME: ' ' })).toBe(join(homedir(), '.config', 'nmlab'));
  });
});
