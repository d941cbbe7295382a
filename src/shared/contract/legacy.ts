/**
 * Results written by older NMLab versions lack fields that newer ones record. Readers do not
 * show such a gap as a blank or a zero: they name the fields a result lacks (`missingFields`),
 * and say "recorded before NMLab stored …; rerun to get it" (`legacyNote`). A tuning result is
 * legacy where its upgrade (`upgradeTuneRunResult`, ./tuning.ts) marks it so; a study's pretrain
 * result is read with {@link StudyPretrainRunResult} (./study.ts).
 */
import { StudyPretrainRunResult } from './study';
import { isTuneRunResultLike, upgradeTuneRunResult } from './tuning';

/** What each field a legacy result may lack is, in words ("recorded before NMLab stored …"). */
export const LEGACY_FIELD_WORDS: Readonly<Record<string, string>> = {
  spectrumPreprocess: 'preprocessed spectra (SVE and LSVR are of Z as it is)',
  downstreamNoise: 'the downstream label noise',
  stopped: 'where training stopped',
  preset: 'the preset',
  engine: 'the engine',
  labelsSha256: 'the sha256 of the labels it was trained on',
  memorised: 'the share of flipped labels it memorised',
  labelsVerified: 'whether the reused backbone’s labels were checked',
};

/**
 * The fields a run's result lacks because an older NMLab wrote it; [] for a current result and
 * for results of shapes without a known gap. `kind` is the run's kind (`study.pretrain`, …).
 */
export function missingFields(kind: string, raw: unknown): string[] {
  if (isTuneRunResultLike(raw)) {
    // The tuning upgrade decides what is legacy; it fills preset and engine where it can.
    const r = upgradeTuneRunResult(raw) as { legacy?: true; preset?: unknown; engine?: unknown };
    if (r.legacy !== true) return [];
    return ['spectrumPreprocess', 'downstreamNoise', 'stopped', ...(r.preset === null ? ['preset'] : []), ...(r.engine === null ? ['engine'] : [])];
  }
  if (kind === 'study.pretrain') {
    const r = StudyPretrainRunResult.safeParse(raw);
    if (!r.success) return [];
    const wanted = r.data.reused ? ['labelsSha256', 'labelsVerified'] : ['labelsSha256', 'memorised'];
    return wanted.filter((k) => r.data[k] === undefined);
  }
  return [];
}

/** "recorded before NMLab stored A and B; rerun to get them" (for `missing` field names). */
export function legacyNote(missing: readonly string[]): string {
  const words = missing.map((k) => LEGACY_FIELD_WORDS[k] ?? k);
  const list = words.length > 1 ? `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}` : (words[0] ?? '');
  return `recorded before NMLab stored ${list}; rerun to get ${words.length > 1 ? 'them' : 'it'}`;
}
