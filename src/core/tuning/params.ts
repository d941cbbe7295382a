/**
 * The resolution of tuning overrides into full, validated {@link TuneParams}: the defaults of
 * the method and preset (`tuneDefaults`, src/shared/contract/tuning.ts, where the UI form reads
 * them too), then the overrides.
 */
import { TuneOverrides, TuneParams, tuneDefaults } from '../../shared/contract/tuning';
import { NmlabError } from '../../shared/errors';

// Where src/core/finetune/run.ts imports the preset weights from.
export { PRESET_TERMS, tuneDefaults } from '../../shared/contract/tuning';

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
