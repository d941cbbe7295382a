/** The y range of the app's and the report's charts with error bars (charts/errorBars.ts). */
import { describe, expect, it } from 'vitest';
import { valueRange, yLimits } from '../../src/renderer/src/components/charts/errorBars';
import { whisker } from '../../src/shared/errorBar';

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

  it('stops the axis at a bound a bar reaches beyond; the plugin draws that end as an arrow', () => {
    // A 95 % t-interval of two replicates, 60 ± 63.5 %: [-3.5, 123.5]. The axis stays 0–100.
    expect(yLimits([60], [[-3.5, 123.5]], [0, 100])).toEqual({ min: 0, max: 100 });
    // Only the side that passes its bound is stopped: [90, 104] over a span of 14, pad 1.12.
    const top = yLimits([95], [[90, 104]], [0, 100]);
    expect(top.max).toBe(100);
    expect(top.suggestedMin).toBeCloseTo(90 - 1.12, 12);
    expect(whisker([-3.5, 123.5], 0, 100)).toEqual({ lo: 0, hi: 100, pastLo: true, pastHi: true });
    expect(whisker([90, 104], 88.88, 100)).toEqual({ lo: 90, hi: 100, pastLo: false, pastHi: true });
    expect(whisker([20, 30], 0, 100)).toEqual({ lo: 20, hi: 30, pastLo: false, pastHi: false });
    // Wholly off the axis: nothing to draw.
    expect(whisker([101, 120], 0, 100)).toBeNull();
  });

  it('ignores missing values and intervals, and has no range without data', () => {
    expect(valueRange([null, NaN, 3], [null, [1, NaN] as [number, number]])).toEqual([1, 3]);
    expect(yLimits([null], [null])).toEqual({});
  });
});
