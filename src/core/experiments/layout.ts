/**
 * Scan a project's `features/` folder for the layout the experiment builder offers
 * (convention documented at `FeatureLayout` in src/shared/contract/experiments.ts). Only
 * `.npy` headers are read, so a large cache scans quickly.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { FeatureLayout } from '../../shared/contract/experiments';
import { readNpyHeader } from '../arrays/npy';
import { resolveInside } from '../projects/resolveInside';
import { errnoCode } from '../projects/fsErrors';

const Meta = z.object({ gamma: z.number().min(0).max(1).optional(), name: z.string().optional() }).passthrough();

async function dirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}

export async function scanFeatureLayout(projectDir: string): Promise<FeatureLayout> {
  const root = await resolveInside(projectDir, 'features');
  const backbones: FeatureLayout['backbones'] = [];
  const datasets = new Map<string, Map<string, { rows: number; dim: number }>>();
  for (const b of await dirs(root)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(b)) continue;
    let gamma: number | undefined;
    let name: string | undefined;
    try {
      const meta = Meta.safeParse(JSON.parse(await readFile(join(root, b, 'meta.json'), 'utf8')));
      if (meta.success) ({ gamma, name } = meta.data);
    } catch {
      /* no meta.json: γ unknown */
    }
    const found: string[] = [];
    for (const d of await dirs(join(root, b))) {
      let files: string[];
      try {
        files = await readdir(join(root, b, d));
      } catch {
        continue;
      }
      for (const f of files) {
        const m = /^([A-Za-z0-9][A-Za-z0-9_-]*)\.npy$/.exec(f);
        if (!m || !files.includes(`${m[1]}.labels.npy`)) continue;
        try {
          const h = await readNpyHeader(join(root, b, d, f));
          if (h.shape.length !== 2) continue;
          const splits = datasets.get(d) ?? new Map();
          splits.set(m[1], { rows: h.shape[0], dim: h.shape[1] });
          datasets.set(d, splits);
          if (!found.includes(d)) found.push(d);
        } catch {
          /* not a readable .npy: the run would report it; the builder skips it */
        }
      }
    }
    if (found.length) backbones.push({ id: b, ...(name ? { name } : {}), ...(gamma !== undefined ? { gamma } : {}), datasets: found });
  }
  return {
    backbones,
    datasets: [...datasets.entries()].map(([id, splits]) => ({ id, splits: [...splits.entries()].map(([n, s]) => ({ name: n, ...s })).sort((a, b) => a.name.localeCompare(b.name)) })),
  };
}
