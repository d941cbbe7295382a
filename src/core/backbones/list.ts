/**
 * The backbones of a project (`backbones/<id>/` with its backbone.json), their provenance as
 * recorded there, and the features cached for each (`features/<key>.json` sidecars whose
 * backbone sha256 matches). Data floor: the `backbones` service and the reports both read it.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackboneEntry, CachedFeatures } from '../../shared/contract/backbonesService';
import { BACKBONE_FILE, BACKBONES_FOLDER, readBackboneManifest } from '../features/backbone';
import { FEATURES_FOLDER, FeatureCacheMeta } from '../features/cache';
import { listFolder } from '../fs/list';
import { resolveInside } from '../projects/resolveInside';

async function names(dir: string, what: string): Promise<string[]> {
  return (await listFolder(dir, `list ${what} in`)).filter((n) => !n.startsWith('.')).sort();
}

/** Every cached feature file of the project, by backbone sha256. */
async function cachedFeatures(projectDir: string): Promise<Map<string, CachedFeatures[]>> {
  const root = await resolveInside(projectDir, FEATURES_FOLDER);
  const out = new Map<string, CachedFeatures[]>();
  for (const name of await names(root, 'features')) {
    if (!name.endsWith('.json')) continue;
    let meta: FeatureCacheMeta;
    try {
      meta = FeatureCacheMeta.parse(JSON.parse(await readFile(join(root, name), 'utf8')));
    } catch {
      continue; // not a cache sidecar (or a broken one, which extraction will rewrite)
    }
    const list = out.get(meta.backbone.sha256) ?? [];
    list.push({ key: meta.key, file: meta.file, dataset: meta.dataset, output: meta.output, count: meta.count, featureDim: meta.featureDim, createdAt: meta.createdAt, seconds: meta.seconds });
    out.set(meta.backbone.sha256, list);
  }
  return out;
}

/** The project's backbones, sorted by id; folders without a valid backbone.json are skipped. */
export async function listBackbones(projectDir: string): Promise<BackboneEntry[]> {
  const root = await resolveInside(projectDir, BACKBONES_FOLDER);
  const features = await cachedFeatures(projectDir);
  const out: BackboneEntry[] = [];
  for (const name of await names(root, 'backbones')) {
    const dir = join(root, name);
    let manifest;
    try {
      manifest = await readBackboneManifest(join(dir, BACKBONE_FILE));
    } catch {
      continue;
    }
    let bytes: number | null = null;
    try {
      bytes = (await stat(await resolveInside(dir, manifest.file))).size;
    } catch {
      bytes = null;
    }
    out.push({ dir: `${BACKBONES_FOLDER}/${name}`, manifest, bytes, features: features.get(manifest.sha256) ?? [] });
  }
  return out.sort((a, b) => a.manifest.id.localeCompare(b.manifest.id));
}
