/** The spectrum of feature matrices (paper §5; DESIGN §4): see ./spectrum.ts. */
export { spectrumOfFile, spectrumOfMatrix, singularValuesSync, type SpectrumOptions, type SpectrumResult, type SpectrumMethod } from './spectrum';
export { spectrumStats, type SpectrumStats } from './stats';
export { SPECTRUM_PREPROCESS, referencePreprocess, type SpectrumPreprocess } from './preprocess';
