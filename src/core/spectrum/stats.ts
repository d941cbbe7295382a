/**
 * Scalar summaries of a singular-value spectrum (paper §5, Definitions 5.1 and 5.2; DESIGN §4).
 */

/** Summaries of σ₁ ≥ … ≥ σ_n ≥ 0. */
export interface SpectrumStats {
  /** Singular value entropy, Eq. (2): −Σ pᵢ log pᵢ, pᵢ = σᵢ/Σσⱼ, natural log; 0·log 0 = 0. */
  sve: number;
  /** Largest singular value ratio, Eq. (3): −log(σ₁/Σσⱼ). */
  lsvr: number;
  /** σ₁/Σσⱼ (= exp(−LSVR)). */
  sigma1Share: number;
  /**
   * Effective rank exp(SVE) as defined by Roy & Vetterli ("The effective rank: a measure of
   * effective dimensionality", EUSIPCO 2007): between 1 (one direction) and n (flat spectrum).
   */
  effectiveRank: number;
}

/**
 * SVE, LSVR, σ₁ share and effective rank of descending singular values. Zero values add
 * nothing to the entropy (the limit of p log p at 0). An all-zero spectrum has no defined
 * ratios: everything is NaN then, and callers should report it.
 */
export function spectrumStats(sigma: ArrayLike<number>): SpectrumStats {
  let total = 0;
  let s1 = 0;
  for (let i = 0; i < sigma.length; i++) {
    total += sigma[i];
    if (sigma[i] > s1) s1 = sigma[i];
  }
  if (!(total > 0)) return { sve: NaN, lsvr: NaN, sigma1Share: NaN, effectiveRank: NaN };
  let sve = 0;
  for (let i = 0; i < sigma.length; i++) {
    const p = sigma[i] / total;
    if (p > 0) sve -= p * Math.log(p);
  }
  const share = s1 / total;
  return { sve, lsvr: -Math.log(share), sigma1Share: share, effectiveRank: Math.exp(sve) };
}
