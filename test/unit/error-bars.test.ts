/** The y range of the app's and the report's charts with error bars (charts/errorBars.ts). */
import { describe, expect, it } from 'vitest';
import { valueRange, yLimits } from '../../src/renderer/src/components/charts/errorBars';

describe('yLimits', () => {
  it('covers both ends of every interval, padded by 8 % of the span', () => {
    // Means 60–70, intervals down to 50 and up to 90: span 40, pad 3.2.
    const r = yLimits([60, 70], [[50, 65], [65, 90]]);
    expect(r.suggestedMin).toBeCloseTo(46.8, 12);
    expect(r.suggestedMax).toBeCloseTo(93.2, 12);
    expect(r.min).toBeUndefined();
    expect(r.max).toBeUndefined();
  });

  it('stops the padding at the bounds when every bar is inside them', () => {
    // [2, 99]: the padding (7.76) would pass 0 and 100, so the axis is exactly 0–100.
    expect(yLimits([50], [[2, 99]], [0, 100])).toEqual({ min: 0, max: 100 });
  });

  it('widens the axis past a bound a bar reaches beyond, instead of cutting the bar', () => {
    // A 95 % t-interval of two replicates, 60 ± 63.5 %: [-3.5, 123.5]; span 127, pad 10.16.
    const r = yLimits([60], [[-3.5, 123.5]], [0, 100]);
    expect(r.min).toBeUndefined();
    expect(r.max).toBeUndefined();
    expect(r.suggestedMin).toBeCloseTo(-13.66, 12);
    expect(r.suggestedMax).toBeCloseTo(133.66, 12);
    // Only the side that passes its bound is widened.
    const top = yLimits([95], [[90, 104]], [0, 100]);
    expect(top.suggestedMin).toBeCloseTo(90 - 1.12, 12);
    expect(top.suggestedMax).toBeCloseTo(104 + 1.12, 12);
    // [0.5, 9]: span 8.5, pad 0.68 passes 0 with the bar inside: min 0; the top stays soft.
    const bottom = yLimits([5], [[0.5, 9]], [0, 100]);
    expect(bottom.min).toBe(0);
    expect(bottom.suggestedMin).toBeUndefined();
    expect(bottom.suggestedMax).toBeCloseTo(9.68, 12);
  });

  it('ignores missing values and intervals, and has no range without data', () => {
    expect(valueRange([null, NaN, 3], [null, [1, NaN] as [number, number]])).toEqual([1, 3]);
    expect(yLimits([null], [null])).toEqual({});
  });
});
