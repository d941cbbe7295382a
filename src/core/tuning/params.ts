/**
 * Defaults of a tuning fit per method and preset, and the resolution of overrides into full,
 * validated {@link TuneParams} (schema: src/shared/contract/tuning.ts).
 *
 * Defaults (DESIGN §4): LP AdamW lr 0.01, no decay; MLP and NMTune lr 0.001, wd 1e-4; cosine,
 * 30 epochs, batch 128. The `reference` preset takes the authors' README command for NMTune
 * (`nml_tune.py --epochs=30 --lr=0.001 --wd=0.0001 --batch-size=64 --mlp-with-res=True
 * --mlp-res-scale-init=1.0 --mlp-after-ratio=4 --mlp-after-layers=1 --mse-loss-weight=1.0
 * --cov-loss-weight=0.04 --svd-loss-weight=0.001`, head kaiming-uniform with zero bias).
 */
import { TuneOverrides, TuneParams, type TuneMethodName, type TunePreset, type TuneTerms } from '../../shared/contract/tuning';
import { NmlabError } from '../../shared/errors';

/** Term weights of each preset (paper eq. 7 with λ = 0.01; the authors' argparse defaults). */
export const PRESET_TERMS: Record<TunePreset, TuneTerms> = {
  paper: { mse: 0.01, cov: 0.01, svd: 0.01, svdTopK: 1 },
  reference: { mse: 1.0, cov: 0.04, svd: 0.001, svdTopK: 5 },
};

/** The defaults of `method` under `preset`. LP has no MLP, so its preset changes nothing but the record. */
export function tuneDefaults(method: TuneMethodName, preset: TunePreset = 'paper'): TuneParams {
  const lp = method === 'lp';
  const ref = preset === 'reference' && !lp;
  return {
    method,
    preset,
    epochs: 30,
    lr: lp ? 0.01 : 0.001,
    weightDecay: lp ? 0 : 1e-4,
    batchSize: ref ? 64 : 128,
    schedule: 'cosine',
    warmupEpochs: 0,
    seed: 0,
    fraction: 1,
    numClasses: null,
    mlpRatio: 4,
    hiddenBlocks: 1,
    residual: ref,
    residualScaleInit: 1,
    headInit: ref ? 'kaiming-zero' : 'torch-linear',
    // MLP tuning is NMTune without its terms (the paper's ablation, §6.2).
    terms: method === 'nmtune' ? PRESET_TERMS[preset] : { mse: 0, cov: 0, svd: 0, svdTopK: PRESET_TERMS[preset].svdTopK },
    augment: { weakNoise: 0, strongNoise: 0.1, strongDropout: 0.1 },
    engine: 'auto',
    downstreamNoise: { eta: 0, semantics: 'any-class', seed: null },
  };
}

/** A readable list of zod issues: `key: problem`. */
function issues(err: { issues: Array<{ path: PropertyKey[]; message: string }> }): string {
  return err.issues.map((i) => `${i.path.map(String).join('.') || '(params)'}: ${i.message}`).join('; ');
}

/**
 * Full parameters from overrides: the defaults of the method and preset, then the overrides
 * (nested objects replace the default whole). `method` is required. Throws BAD_REQUEST naming
 * each bad key.
 */
export function resolveTuneParams(overrides: TuneOverrides, what = 'tuning parameters'): TuneParams {
  const o = TuneOverrides.safeParse(overrides);
  if (!o.success) throw new NmlabError('BAD_REQUEST', `${what}: ${issues(o.error)}`);
  const method = o.data.method;
  if (!method) throw new NmlabError('BAD_REQUEST', `${what}: method is required (lp, mlp or nmtune)`);
  const p = TuneParams.safeParse({ ...tuneDefaults(method, o.data.preset ?? 'paper'), ...o.data });
  if (!p.success) throw new NmlabError('BAD_REQUEST', `${what}: ${issues(p.error)}`);
  return p.data;
}
