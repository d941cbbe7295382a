/** Label-noise injection (DESIGN §4): see ./inject.ts; the PRNG is ./prng.ts. */
export * from './inject';
export { PRNG_NAME, Xoshiro128, sampleWithoutReplacement } from './prng';
