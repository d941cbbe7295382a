/**
 * Listing a folder of a project that may not exist yet (no runs, no experiments, no datasets
 * so far): a missing folder lists as empty; any other failure is an fsError naming the folder.
 */
import { readdir } from 'node:fs/promises';
import { errnoCode, fsError } from './errors';

/** The names in `dir`, unsorted; `action` reads after "cannot" in messages ("list datasets in"). */
export async function listFolder(dir: string, action = 'list'): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError(err, action, dir);
  }
}
