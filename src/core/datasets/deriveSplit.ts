/**
 * A new train/test split as a derived dataset: the parent's rows, labels and domains as they
 * are, with its own seeded stratified `split.npy` (DESIGN §4: splits stratified per class).
 * The parent, and any split it already has, is left untouched.
 */
import type { DatasetManifest } from '../../shared/contract/datasets';
import { stratifiedSplit } from './split';
import { freeDatasetId, loadDataset, writeDataset } from './store';

export interface SplitDeriveOptions {
  testFraction: number;
  seed: number;
  id?: string;
  name?: string;
}

/** Derive `parent` with a stratified split of `testFraction` of each class into test. */
export async function deriveSplit(projectDir: string, parentId: string, opts: SplitDeriveOptions): Promise<DatasetManifest> {
  const parent = await loadDataset(projectDir, parentId);
  const split = stratifiedSplit(parent.labels, opts.testFraction, opts.seed);
  const test = split.reduce((a, b) => a + b, 0);
  const pct = Math.round(opts.testFraction * 100);
  const m = parent.manifest;
  const id = opts.id ?? (await freeDatasetId(projectDir, `${parentId}-split${pct}-s${opts.seed}`));
  return writeDataset(
    projectDir,
    id,
    {
      name: opts.name ?? `${m.name} (${pct}% test split, seed ${opts.seed})`,
      kind: m.kind,
      source: { type: 'derived', parent: parentId },
      classes: m.classes,
      domains: m.domains,
      ...(m.image ? { image: m.image } : {}),
      ...(m.featureDim ? { featureDim: m.featureDim } : {}),
      split: { file: 'split.npy', train: split.length - test, test, method: 'stratified', testFraction: opts.testFraction, seed: opts.seed },
      derived: { op: 'split', parent: parentId, testFraction: opts.testFraction, seed: opts.seed },
    },
    { labels: Int32Array.from(parent.labels), split },
  );
}
