/**
 * How much of the pre-training label noise a backbone memorised: the analogue, per backbone,
 * of the paper's Table 1 (which reports the pre-trained accuracy for each γ). A network that
 * fits its noisy labels reproduces the flipped label on a flipped sample instead of its true
 * class; the share that do is what the noise wrote into the weights (issue 10 item 3).
 */
import { NmlabError } from '../../shared/errors';

export interface Memorisation {
  /** Training samples whose label the noise changed. */
  flipped: number;
  /** … of which the trained model predicts the flipped (noisy) label. */
  memorised: number;
  /** … of which it predicts the true (clean) label instead. */
  corrected: number;
}

/**
 * Count, over the flipped samples, the model's predictions equal to the noisy label and to
 * the clean one (eval-mode predictions on the training images). `null` share when nothing
 * was flipped (γ = 0): there is nothing to memorise.
 */
export function memorisationOf(pred: Int32Array, noisyLabels: Int32Array, cleanLabels: Int32Array, flippedIndices: Int32Array): Memorisation {
  if (pred.length !== noisyLabels.length || pred.length !== cleanLabels.length) {
    throw new NmlabError('INTERNAL', `memorisation needs one prediction per training sample: ${pred.length} predictions, ${noisyLabels.length} noisy and ${cleanLabels.length} clean labels`);
  }
  let memorised = 0;
  let corrected = 0;
  for (const i of flippedIndices) {
    if (!(i >= 0 && i < pred.length)) throw new NmlabError('INTERNAL', `flipped index ${i} is outside the ${pred.length} training samples`);
    if (pred[i] === noisyLabels[i]) memorised++;
    else if (pred[i] === cleanLabels[i]) corrected++;
  }
  return { flipped: flippedIndices.length, memorised, corrected };
}

/** The share of flipped labels memorised, or null when none were flipped. */
export function memorisedShare(m: Memorisation): number | null {
  return m.flipped > 0 ? m.memorised / m.flipped : null;
}
