/**
 * Statistics for results you can trust (issue 10 item 2): Student-t and normal distributions,
 * means with 95 % intervals, nested aggregation over pre-training replicates and tuning
 * seeds, paired differences, correlations with intervals, "best" only where intervals
 * separate, and claim verdicts. Base floor: pure functions, no I/O.
 */
export { logGamma, incompleteBeta, upperIncompleteGamma, normalCdf, normalQuantile, studentTCdf, studentTQuantile } from './distributions';
export { mean, sampleStd, meanEstimate, nestedEstimate, pairedDifference, replicateMeans, separatedBest, type Observation } from './estimate';
export { correlation, ranks } from './correlation';
export { claimVerdict } from './verdict';
