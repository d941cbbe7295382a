/**
 * The recently opened projects, kept in `$NMLAB_HOME/recent.json` and written atomically.
 * Entries whose folder has gone are kept and reported `available: false` (a removable disk
 * may come back); only `forget` removes one.
 */
import { access, mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { RecentProject } from '../../shared/contract/projects';
import { writeJsonAtomic } from '../fs/atomic';
import { errnoCode, fsError } from '../fs/errors';
import { manifestPath } from './manifest';

const RECENT_VERSION = 1;
/** Enough for any real workflow, small enough to stat on every listing. */
const MAX_ENTRIES = 50;

const RecentFile = z.object({
  schemaVersion: z.literal(RECENT_VERSION),
  projects: z.array(z.object({ dir: z.string(), name: z.string(), openedAt: z.string() })),
});
type RecentEntry = z.infer<typeof RecentFile>['projects'][number];

export class RecentStore {
  readonly file: string;
  /** Writes are chained so concurrent calls in one process never lose each other's update. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly home: string) {
    this.file = join(home, 'recent.json');
  }

  /** Newest first, each with `available` checked now. */
  async list(): Promise<RecentProject[]> {
    const entries = await this.read();
    return Promise.all(
      entries.map(async (e) => ({ ...e, available: await exists(manifestPath(e.dir)) })),
    );
  }

  /** Record that `dir` was opened (or renamed) now, moving it to the top. */
  touch(dir: string, name: string): Promise<void> {
    return this.update((entries) => [{ dir, name, openedAt: new Date().toISOString() }, ...entries.filter((e) => e.dir !== dir)].slice(0, MAX_ENTRIES));
  }

  /** Update the stored name of `dir` without reordering. */
  rename(dir: string, name: string): Promise<void> {
    return this.update((entries) => entries.map((e) => (e.dir === dir ? { ...e, name } : e)));
  }

  /** Remove `dir`; resolves true if it was listed. */
  async forget(dir: string): Promise<boolean> {
    let found = false;
    await this.update((entries) => {
      found = entries.some((e) => e.dir === dir);
      return entries.filter((e) => e.dir !== dir);
    });
    return found;
  }

  private update(change: (entries: RecentEntry[]) => RecentEntry[]): Promise<void> {
    const next = this.chain.then(async () => {
      const entries = change(await this.read());
      try {
        await mkdir(this.home, { recursive: true });
        await writeJsonAtomic(this.file, { schemaVersion: RECENT_VERSION, projects: entries });
      } catch (err) {
        throw fsError(err, 'write the recent-projects list', this.file);
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async read(): Promise<RecentEntry[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw fsError(err, 'read the recent-projects list', this.file);
    }
    try {
      const parsed = RecentFile.parse(JSON.parse(text));
      return [...parsed.projects].sort((a, b) => b.openedAt.localeCompare(a.openedAt));
    } catch {
      // A damaged list must not lock the user out of the app: keep it aside for inspection
      // and start a new one. Projects themselves are untouched.
      await rename(this.file, `${this.file}.corrupt-${Date.now()}`).catch(() => undefined);
      return [];
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
