/** Pure helpers of the charts: log-axis ticks, the σᵢ/σ₁ spectrum and the loss panels. */
import { describe, expect, it } from 'vitest';
import { logTick } from '../../src/renderer/src/components/charts/ticks';
import { lossPanels } from '../../src/renderer/src/components/experiments/series';
import { relativeSpectrum } from '../../src/shared/contract/reports';

describe('logTick', () => {
  it('labels decades, and 2× / 5× only over at most two decades', () => {
    const ticks = [0.1, 0.2, 0.3, 0.5, 1, 2, 7, 10];
    expect(ticks.map((v) => logTick(v, 2))).toEqual(['0.1', '0.2', '', '0.5', '1', '2', '', '10']);
    expect(ticks.map((v) => logTick(v, 5))).toEqual(['0.1', '', '', '', '1', '', '', '10']);
  });
  it('writes far decades with a superscript exponent', () => {
    expect(logTick(1e-5, 6)).toBe('10⁻⁵');
    expect(logTick(1e4, 6)).toBe('10⁴');
    expect(logTick(5e-7, 1)).toBe('5·10⁻⁷');
    expect(logTick(0, 1)).toBe('');
  });
});

describe('relativeSpectrum', () => {
  it('is σᵢ/σ₁ against i = 1…, zeros dropped, at most max points', () => {
    expect(relativeSpectrum([4, 2, 1, 0])).toEqual([
      { x: 1, y: 1 },
      { x: 2, y: 0.5 },
      { x: 3, y: 0.25 },
    ]);
    expect(relativeSpectrum([4, 2, 1], 2).length).toBe(2);
    expect(relativeSpectrum([0, 0])).toEqual([]);
  });
});

describe('lossPanels', () => {
  it('puts total and CE together and every regulariser on its own axis', () => {
    const points = [1, 2].map((step) => ({ step, values: { total: 1 + step, ce: step, mse: 0.5, cov: 0.01, svd: -0.2, lr: 0.001 } }));
    const panels = lossPanels(points);
    expect(panels.map((p) => p.key)).toEqual(['main', 'mse', 'cov', 'svd']);
    expect(panels[0].series.map((s) => s.label)).toEqual(['total', 'CE']);
    expect(panels[3].series[0].points).toEqual([
      { x: 1, y: -0.2 },
      { x: 2, y: -0.2 },
    ]);
    expect(panels[3].title).toMatch(/≤ 0/);
    expect(lossPanels([{ step: 1, values: { total: 1 } }]).map((p) => p.key)).toEqual(['main']);
  });
});
