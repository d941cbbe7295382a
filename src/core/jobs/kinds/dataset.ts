/**
 * `dataset`: import or derive one dataset of a project in a worker (the app's import wizard
 * and dataset actions; the CLI's `nmlab dataset` does the same in-process). Every op writes a
 * complete new dataset or nothing (src/core/datasets/store.ts), so a failure or a cancel
 * leaves the project as it was. The result is the new dataset's manifest.
 */
import type { DatasetManifest } from '../../../shared/contract/datasets';
import { deriveCorruptions } from '../../datasets/derive';
import { deriveSplit } from '../../datasets/deriveSplit';
import { importFeatures, importIdx, importImageFolder } from '../../datasets/importers';
import { deriveNoisy } from '../../datasets/noise';
import { throwIfCancelled } from './cancel';
import type { JobRun } from './types';

export const run: JobRun<'dataset'> = async (spec, ctx): Promise<DatasetManifest> => {
  const a = spec.action;
  const dir = spec.projectDir;
  const step = (message: string): void => ctx.progress(0, 1, message);
  let m: DatasetManifest;
  switch (a.op) {
    case 'import': {
      const common = {
        name: a.name,
        ...(a.id ? { id: a.id } : {}),
        ...(a.classes ? { classes: a.classes } : {}),
        ...(a.testFraction > 0 ? { testFraction: a.testFraction } : {}),
        seed: a.seed,
        signal: ctx.signal,
        onProgress: (done: number, total: number, message: string) => ctx.progress(done, total, message),
      };
      const s = a.source;
      if (s.type === 'image-folder') {
        step(`scanning ${s.dir}`);
        m = await importImageFolder(dir, { ...common, dir: s.dir, onSizeMismatch: a.strictSize ? 'error' : 'resize' });
      } else if (s.type === 'idx') {
        step(`reading ${s.images}`);
        m = await importIdx(dir, { ...common, images: s.images, labels: s.labels, testImages: s.testImages, testLabels: s.testLabels });
      } else {
        step(`reading ${s.features}`);
        const labelColumn = s.labelColumn === undefined ? undefined : /^-?\d+$/.test(s.labelColumn) ? Number(s.labelColumn) : s.labelColumn;
        m = await importFeatures(dir, { ...common, features: s.features, labels: s.labels, labelColumn });
      }
      break;
    }
    case 'noise':
      step(`adding ${a.type} label noise (${(a.ratio * 100).toFixed(1)} %) to "${a.dataset}"`);
      m = await deriveNoisy(dir, a.dataset, { type: a.type, ratio: a.ratio, seed: a.seed, split: a.split, ...(a.classes ? { classes: a.classes } : {}), ...(a.map ? { map: a.map } : {}), ...(a.id ? { id: a.id } : {}) });
      break;
    case 'corrupt':
      step(`corrupting "${a.dataset}": ${a.corruptions.map((c) => c.name).join(', ')}`);
      m = await deriveCorruptions(dir, a.dataset, { corruptions: a.corruptions, seed: a.seed, split: a.split, includeClean: a.includeClean, ...(a.id ? { id: a.id } : {}) });
      break;
    case 'split':
      step(`splitting "${a.dataset}"`);
      m = await deriveSplit(dir, a.dataset, { testFraction: a.testFraction, seed: a.seed, ...(a.id ? { id: a.id } : {}) });
      break;
  }
  throwIfCancelled(ctx.signal, 'the end of the dataset job (the dataset was written)');
  ctx.progress(1, 1, `wrote dataset "${m.id}" (${m.count} rows)`);
  return m;
};
