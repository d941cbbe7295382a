/** formatClaim: the one-line text of a claim's verdict (experiment compare, end of nmlab demo). */
import { describe, expect, it } from 'vitest';
import { Claim, formatClaim } from '../../src/shared/contract/compare';

describe('formatClaim', () => {
  it('writes a difference in points with its interval and basis', () => {
    const k = Claim.parse({ id: 'ood-decline', statement: 'More pre-training noise lowers OOD accuracy', sign: -1, verdict: 'supported', kind: 'difference', value: -0.0312, lo: -0.0455, hi: -0.0169, n: 3, basis: 'lp on ood; n = 3 replicates' });
    expect(formatClaim(k)).toBe('More pre-training noise lowers OOD accuracy: supported (-3.12 pts, 95 % CI [-4.55 pts, -1.69 pts]; lp on ood; n = 3 replicates)');
  });
  it('writes a correlation as r, and no interval when there is none', () => {
    const k = Claim.parse({ id: 'sve-id', statement: 'Higher SVE(F) goes with higher ID accuracy', sign: 1, verdict: 'inconclusive', kind: 'correlation', value: 0.41234, lo: null, hi: null, n: 3, basis: 'Pearson r across 3 backbones' });
    expect(formatClaim(k)).toBe('Higher SVE(F) goes with higher ID accuracy: inconclusive (r 0.412; Pearson r across 3 backbones)');
  });
});
