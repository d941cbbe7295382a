/**
 * `features`: run a backbone over a project dataset in the worker (DESIGN §2: heavy work never
 * on the main thread), reporting progress per batch and honouring cancellation; the result
 * names the cached `.npy` (features/<key>.npy).
 */
import type { FeaturesJobResult } from '../../../shared/contract/backbones';
import { extractDatasetFeatures } from '../../features/cache';
import type { JobRun } from './types';

export const run: JobRun<'features'> = async (spec, ctx) => {
  const r = await extractDatasetFeatures(spec.projectDir, {
    backbone: spec.backbone,
    dataset: spec.dataset,
    outputNode: spec.outputNode,
    overrides: spec.preprocess,
    batchSize: spec.batchSize,
    force: spec.force,
    signal: ctx.signal,
    onProgress: (done, total, message) => ctx.progress(done, total, message),
  });
  if (r.cached) ctx.log('info', `features of "${spec.dataset}" were already cached (${r.meta.file})`);
  const result: FeaturesJobResult = { key: r.meta.key, file: r.meta.file, count: r.meta.count, featureDim: r.meta.featureDim, cached: r.cached, seconds: r.meta.seconds };
  return result;
};
