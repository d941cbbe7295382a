/** Verdicts on the paper's claims, read from intervals (issue 10 item 3). */
import type { Verdict } from '../../shared/contract/compare';

/**
 * The verdict on a claimed sign of an effect from its interval [lo, hi]: `supported` when the
 * interval excludes 0 on the claimed side, `contradicted` when it excludes 0 on the other
 * side, `inconclusive` when it contains 0 or there is no interval (n = 1). Whatever the data
 * say, one of the three.
 */
export function claimVerdict(interval: { lo: number | null; hi: number | null } | null, sign: 1 | -1): Verdict {
  if (!interval || interval.lo === null || interval.hi === null || !Number.isFinite(interval.lo) || !Number.isFinite(interval.hi)) return 'inconclusive';
  if (interval.lo > 0) return sign > 0 ? 'supported' : 'contradicted';
  if (interval.hi < 0) return sign < 0 ? 'supported' : 'contradicted';
  return 'inconclusive';
}
