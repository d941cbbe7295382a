/**
 * Derived datasets: a stratified fraction, corruption domains, and (in noise.ts) label noise.
 * A derived dataset records its parent and what was done; the parent is never modified.
 */
import type { CorruptionSpec, DatasetManifest } from '../../shared/contract/datasets';
import { NmlabError } from '../../shared/errors';
import { corruptBatch } from '../images/corruptions';
import type { ImageBatch } from '../images/image';
import { stratifiedSubset } from './split';
import { freeDatasetId, gatherRows, loadDataset, splitRows, writeDataset } from './store';

export interface FractionOptions {
  fraction: number;
  seed: number;
  /** Which rows the fraction is drawn from (default `train`). */
  split?: 'train' | 'test' | 'all';
  id?: string;
  name?: string;
}

/** A stratified fraction of a dataset's rows (paper §6: data fractions 10–100 %, per class). */
export async function deriveFraction(projectDir: string, parentId: string, opts: FractionOptions): Promise<DatasetManifest> {
  const parent = await loadDataset(projectDir, parentId);
  const which = opts.split ?? 'train';
  const rows = stratifiedSubset(parent.labels, splitRows(parent, which), opts.fraction, opts.seed);
  const name = opts.name ?? `${parent.manifest.name} (${Math.round(opts.fraction * 100)}% of ${which}, seed ${opts.seed})`;
  const id = opts.id ?? (await freeDatasetId(projectDir, `${parentId}-frac${Math.round(opts.fraction * 100)}-s${opts.seed}`));
  const m = parent.manifest;
  return writeDataset(
    projectDir,
    id,
    {
      name,
      kind: m.kind,
      source: { type: 'derived', parent: parentId },
      classes: m.classes,
      domains: m.domains,
      ...(m.image ? { image: m.image } : {}),
      ...(m.featureDim ? { featureDim: m.featureDim } : {}),
      derived: { op: 'fraction', parent: parentId, fraction: opts.fraction, seed: opts.seed, split: which },
    },
    { labels: gatherRows(parent.labels, 1, rows), indices: rows },
  );
}

export interface CorruptionOptions {
  corruptions: CorruptionSpec[];
  seed: number;
  /** Rows to corrupt (default `test`: the paper's protocol evaluates targets on held-out data). */
  split?: 'train' | 'test' | 'all';
  /** Keep the clean rows as the first domain, `clean` (default true). */
  includeClean?: boolean;
  id?: string;
  name?: string;
}

/**
 * OOD target domains (paper §5, train on source, test on targets): one domain per corruption,
 * each a corrupted copy of the chosen rows, stored as its own images with a per-row domain.
 */
export async function deriveCorruptions(projectDir: string, parentId: string, opts: CorruptionOptions): Promise<DatasetManifest> {
  if (opts.corruptions.length === 0) throw new NmlabError('BAD_REQUEST', 'name at least one corruption');
  const names = opts.corruptions.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new NmlabError('BAD_REQUEST', `each corruption may appear once, got ${names.join(', ')}`);
  const parent = await loadDataset(projectDir, parentId);
  if (!parent.images) throw new NmlabError('BAD_REQUEST', `dataset "${parentId}" holds features, not images; corruptions need images`);
  const which = opts.split ?? 'test';
  const rows = splitRows(parent, which);
  const p = parent.images;
  const per = p.height * p.width * p.channels;
  const base: ImageBatch = { ...p, count: rows.length, pixels: gatherRows(p.pixels, per, rows) };
  const includeClean = opts.includeClean ?? true;
  const parts: ImageBatch[] = includeClean ? [base] : [];
  for (const c of opts.corruptions) parts.push(corruptBatch(base, c, opts.seed));
  const count = rows.length * parts.length;
  const pixels = new Uint8Array(count * per);
  parts.forEach((b, k) => pixels.set(b.pixels, k * rows.length * per));
  const rowLabels = gatherRows(parent.labels, 1, rows);
  const labels = new Int32Array(count);
  const domains = new Int32Array(count);
  for (let k = 0; k < parts.length; k++) {
    labels.set(rowLabels, k * rows.length);
    domains.fill(k, k * rows.length, (k + 1) * rows.length);
  }
  const domainNames = [...(includeClean ? ['clean'] : []), ...names];
  const id = opts.id ?? (await freeDatasetId(projectDir, `${parentId}-ood`));
  return writeDataset(
    projectDir,
    id,
    {
      name: opts.name ?? `${parent.manifest.name} (OOD: ${names.join(', ')})`,
      kind: 'images',
      source: { type: 'derived', parent: parentId },
      classes: parent.manifest.classes,
      domains: domainNames,
      image: { height: p.height, width: p.width, channels: p.channels },
      derived: { op: 'corruption', parent: parentId, corruptions: opts.corruptions, seed: opts.seed, split: which, includeClean },
      provenance: { notes: [`${rows.length} ${which} rows per domain`] },
    },
    { labels, images: { ...p, count, pixels }, domains },
  );
}
