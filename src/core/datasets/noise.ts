/**
 * Label noise as a derived dataset (DESIGN §4 "Label noise", paper §4.1: pre-training labels
 * corrupted at ratio γ). The parent keeps its clean labels; the child stores the noisy labels,
 * the flipped row indices (`flipped.npy`) and the realised transition matrix, and reads its
 * pixels or features from the parent.
 */
import type { DatasetManifest } from '../../shared/contract/datasets';
import { NmlabError } from '../../shared/errors';
import { injectLabelNoise, labelsSha256, type LabelNoiseSpec } from '../noise';
import { freeDatasetId, loadDataset, splitRows, writeDataset } from './store';

export interface NoiseDeriveOptions {
  type: 'symmetric' | 'asymmetric';
  /** γ: the fraction of eligible labels to flip. */
  ratio: number;
  seed: number;
  /** Rows that may be flipped (default `train`; a set without a split has every row in train). */
  split?: 'train' | 'all';
  /** Asymmetric only: the classes to corrupt and/or a class → class map. */
  classes?: number[];
  map?: Record<number, number>;
  id?: string;
  name?: string;
}

/** Derive a dataset whose labels carry injected noise; the parent is left as it is. */
export async function deriveNoisy(projectDir: string, parentId: string, opts: NoiseDeriveOptions): Promise<DatasetManifest> {
  const parent = await loadDataset(projectDir, parentId);
  const which = opts.split ?? 'train';
  const rows = splitRows(parent, which);
  if (rows.length === 0) throw new NmlabError('BAD_REQUEST', `dataset "${parentId}" has no ${which} rows to add noise to`);
  const sub = Int32Array.from(rows, (r) => parent.labels[r]);
  const numClasses = parent.manifest.classes.length;
  const spec: LabelNoiseSpec =
    opts.type === 'symmetric'
      ? { type: 'symmetric', ratio: opts.ratio, seed: opts.seed }
      : { type: 'asymmetric', ratio: opts.ratio, seed: opts.seed, ...(opts.classes ? { classes: opts.classes } : {}), ...(opts.map ? { map: opts.map } : {}) };
  const res = injectLabelNoise(sub, spec, numClasses);
  const labels = Int32Array.from(parent.labels);
  rows.forEach((r, i) => (labels[r] = res.labels[i]));
  const flipped = Int32Array.from(res.flippedIndices, (i) => rows[i]);
  const pct = Math.round(opts.ratio * 1000) / 10;
  const id = opts.id ?? (await freeDatasetId(projectDir, `${parentId}-${opts.type === 'symmetric' ? 'sym' : 'asym'}${pct}-s${opts.seed}`.replace('.', 'p')));
  const m = parent.manifest;
  return writeDataset(
    projectDir,
    id,
    {
      name: opts.name ?? `${m.name} (${opts.type} noise ${pct}%, seed ${opts.seed})`,
      kind: m.kind,
      source: { type: 'derived', parent: parentId },
      classes: m.classes,
      domains: m.domains,
      ...(m.image ? { image: m.image } : {}),
      ...(m.featureDim ? { featureDim: m.featureDim } : {}),
      derived: {
        op: 'noise',
        parent: parentId,
        noise: {
          type: opts.type,
          ratio: opts.ratio,
          seed: opts.seed,
          splits: [which],
          flippedCount: flipped.length,
          flippedFile: 'flipped.npy',
          transitionMatrix: res.transitionMatrix,
          params: {
            prng: res.prng,
            eligibleRows: rows.length,
            transitionCounts: res.transitionCounts,
            // The noisy labels of the eligible rows, in row order: what a pre-training on them records.
            labelsSha256: labelsSha256(res.labels),
            ...(res.classes ? { classes: res.classes } : {}),
            ...(opts.map ? { map: opts.map } : {}),
          },
        },
      },
    },
    { labels, extra: { flipped: { dtype: 'int32', shape: [flipped.length], data: flipped } } },
  );
}
