/**
 * The demo's reporting pieces on their own: the SVG chart writer (ticks, coordinates, escaping),
 * the summary/table/CSV and durations. Expected values are worked out by hand here, not
 * taken from the code under test.
 */
import { describe, expect, it } from 'vitest';
import { escapeXml, lineChartSvg, niceTicks } from '../../src/core/demo/svg';
import { aggregateSeeds, demoCharts, formatTable, resultsCsv, sampleStd, summarize, type DemoSeedRow } from '../../src/core/demo/results';
import { formatDuration } from '../../src/core/demo/progress';

function row(gamma: number, method: DemoSeedRow['method'], domain: string, accuracy: number, zLsvr = 0.5, seed = 0): DemoSeedRow {
  return {
    gamma,
    seed,
    method,
    domain,
    kind: domain === 'id' ? 'id' : 'ood',
    rows: 100,
    accuracy,
    macroF1: accuracy / 2,
    featSve: 2,
    featLsvr: 0.7,
    zSve: 1.5,
    zLsvr,
    featSveRaw: 1,
    featLsvrRaw: 0.3,
    zSveRaw: 1.1,
    zLsvrRaw: 0.4,
  };
}

describe('niceTicks', () => {
  it('picks 1-2-2.5-5 steps that cover the range', () => {
    expect(niceTicks(0, 30, 5)).toEqual({ ticks: [0, 10, 20, 30], min: 0, max: 30 });
    // (0.87 − 0.61)/5 = 0.052: the next nice step is 0.1 (0.05 is too small).
    expect(niceTicks(0.61, 0.87, 5)).toEqual({ ticks: [0.6, 0.7, 0.8, 0.9], min: 0.6, max: 0.9 });
    expect(niceTicks(1.93, 2.07, 4).ticks).toEqual([1.9, 1.95, 2, 2.05, 2.1]);
  });
  it('widens a single value into a range around it', () => {
    const t = niceTicks(5, 5);
    expect(t.min).toBeLessThan(5);
    expect(t.max).toBeGreaterThan(5);
  });
});

describe('lineChartSvg', () => {
  const svg = lineChartSvg({
    title: 'A < B & "C"',
    xLabel: 'x',
    yLabel: 'y',
    xTicks: [0, 10, 20, 30],
    series: [
      { name: 'LP', points: [{ x: 0, y: 0.6 }, { x: 30, y: 0.9 }] },
      { name: 'F', dashed: true, points: [{ x: 0, y: 0.7 }, { x: 10, y: NaN }, { x: 30, y: 0.8 }] },
    ],
    width: 640,
    height: 400,
  });

  it('maps data to the plot box: left 70, right 640−170, top 44, bottom 400−56', () => {
    // y ticks for [0.6, 0.9] are 0.6..0.9, so y = 0.6 sits on the bottom edge and 0.9 on the top.
    expect(svg).toContain('<path d="M70,344 L470,44" fill="none" stroke="#0072B2" stroke-width="2"/>');
    // 0.7 → 344 − (0.1/0.3)·300 = 244, 0.8 → 144; the NaN point is skipped; the line is dashed.
    expect(svg).toContain('<path d="M70,244 L470,144" fill="none" stroke="#D55E00" stroke-width="2" stroke-dasharray="6,4"/>');
    expect(svg.match(/<circle cx="[\d.]+" cy="[\d.]+" r="3.5" fill="#D55E00"><title>/g)).toHaveLength(2);
  });

  it('is a standalone document with escaped text', () => {
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('<title>A &lt; B &amp; &quot;C&quot;</title>');
    expect(svg).not.toMatch(/href=/);
    expect(escapeXml(`<'&">`)).toBe('&lt;&apos;&amp;&quot;&gt;');
    // Every opened element is closed (self-closing or with its end tag).
    const opened = (svg.match(/<(svg|text|title|circle)[\s>]/g) ?? []).length - (svg.match(/<circle [^>]*\/>/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|text|title|circle)>/g) ?? []).length;
    expect(closed).toBe(opened);
  });
});

/** Every error bar's [lower end, upper end] y coordinates, and the plot box's top and bottom. */
function barEnds(svg: string): { ends: Array<[number, number]>; top: number; bottom: number } {
  const frame = /<rect x="70" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="none"/.exec(svg);
  if (!frame) throw new Error('no plot frame');
  const ends = [...svg.matchAll(/<path class="error-bar" d="M[\d.]+,([\d.]+) L[\d.]+,([\d.]+) /g)].map((m): [number, number] => [Number(m[1]), Number(m[2])]);
  return { ends, top: Number(frame[1]), bottom: Number(frame[1]) + Number(frame[2]) };
}

describe('lineChartSvg error bars', () => {
  it('widens the y axis to both ends of every bar, so none runs off the plot', () => {
    // Points span 0.6–0.9, the bars 0.5–1.05. Extent padded by 3 % of 0.55 at the bar ends:
    // [0.4835, 1.0665] → step 0.2, axis 0.4–1.2 over the 300 px plot (bottom 344).
    const svg = lineChartSvg({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      xTicks: [0, 30],
      series: [{ name: 'LP', points: [{ x: 0, y: 0.6, lo: 0.5, hi: 0.7 }, { x: 30, y: 0.9, lo: 0.85, hi: 1.05 }, { x: 15, y: 0.7, lo: 0.7, hi: 0.7 }] }],
    });
    const { ends, top, bottom } = barEnds(svg);
    expect([top, bottom]).toEqual([44, 344]);
    // 0.5 → 344 − 0.1/0.8·300 = 306.5, 0.7 → 231.5; 0.85 → 175.25, 1.05 → 100.25; the empty bar (lo = hi) is not drawn.
    expect(ends).toEqual([
      [306.5, 231.5],
      [175.25, 100.25],
    ]);
    for (const [lo, hi] of ends) for (const y of [lo, hi]) expect(y > top && y < bottom).toBe(true);
    expect(svg).toContain('<text x="62" y="44" text-anchor="end" dominant-baseline="middle">1.2</text>');
  });

  it('draws the demo\'s accuracy as mean ± std on a 0–100 % axis, a bar past it ending in an arrowhead', () => {
    // γ = 0: 95 ± 10 % (the bar reaches 105 %); γ = 10 %: 40 ± 30 % (down to 10 %).
    const base = { method: 'lp' as const, seeds: 3, idMacroF1: 0, idFeatSve: 1, idZSve: 1, oodMacroF1: 0, oodFeatLsvr: 1, oodZLsvr: 1, oodAccuracy: 0.5, oodAccuracyStd: 0 };
    const charts = demoCharts(
      [
        { ...base, gamma: 0, idAccuracy: 0.95, idAccuracyStd: 0.1 },
        { ...base, gamma: 0.1, idAccuracy: 0.4, idAccuracyStd: 0.3 },
      ],
      [0, 0.1],
    );
    const svg = charts['accuracy-id.svg'];
    const { ends, top, bottom } = barEnds(svg);
    expect([top, bottom]).toEqual([44, 344]);
    // Extent [10, 105] padded by 2.85 → [7.15, 107.85], stopped at 100 %: step 20, axis 0–100.
    expect(svg).toContain('<text x="62" y="44" text-anchor="end" dominant-baseline="middle">100.0</text>');
    expect(svg).not.toContain('>120.0</text>');
    // 85 → 344 − 0.85·300 = 89; 105 is past the axis: drawn to the frame (44). 10 → 314, 70 → 134.
    expect(ends).toEqual([
      [89, 44],
      [314, 134],
    ]);
    // The cut end is an arrowhead pointing up (its arms below the tip), the others are caps.
    const bars = [...svg.matchAll(/<path class="error-bar" d="([^"]+)"/g)].map((m) => m[1]);
    expect(bars[0]).toContain('M66,50.4 L70,44 L74,50.4');
    expect(bars[0]).toContain('M66,89 L74,89');
    expect(bars[1]).not.toMatch(/L[\d.]+,[\d.]+ L/);
    expect(svg).toContain('arrowhead: the bar runs past the axis');
    // No std (OOD here) → no bars, and no arrowhead note.
    expect(barEnds(charts['accuracy-ood.svg']).ends).toHaveLength(0);
    expect(charts['accuracy-ood.svg']).not.toContain('arrowhead');
  });
});

describe('seeds, summary, table and CSV', () => {
  // γ = 0: two seeds; γ = 5 %: one.
  const rows = [
    row(0, 'lp', 'id', 0.8, 0.5, 0),
    row(0, 'lp', 'rotation', 0.4, 0.2, 0),
    row(0, 'lp', 'blur', 0.6, 0.4, 0),
    row(0, 'lp', 'id', 0.7, 0.5, 1),
    row(0, 'lp', 'rotation', 0.3, 0.6, 1),
    row(0, 'lp', 'blur', 0.3, 0.8, 1),
    row(0.05, 'lp', 'id', 0.81),
    row(0.05, 'lp', 'blur', 0.5),
  ];

  it('computes the sample standard deviation', () => {
    expect(sampleStd([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(Math.sqrt(32 / 7), 14);
    expect(sampleStd([3])).toBe(0);
  });

  it('averages each domain over seeds', () => {
    const a = aggregateSeeds(rows);
    expect(a.map((r) => `${r.gamma}/${r.domain}/${r.seeds}`)).toEqual(['0/id/2', '0/rotation/2', '0/blur/2', '0.05/id/1', '0.05/blur/1']);
    expect(a[0].accuracy).toBeCloseTo(0.75, 15);
    expect(a[0].accuracyStd).toBeCloseTo(Math.SQRT1_2 * 0.1, 15);
    expect(a[2].zLsvr).toBeCloseTo(0.6, 15);
    expect(a[3].accuracyStd).toBe(0);
  });

  it('summarises OOD as the mean over target domains, its std over the seeds\' means', () => {
    const s = summarize(rows);
    expect(s).toHaveLength(2);
    expect(s[0]).toMatchObject({ gamma: 0, method: 'lp', seeds: 2 });
    expect(s[0].idAccuracy).toBeCloseTo(0.75, 15);
    // Seed 0: OOD mean (0.4 + 0.6)/2 = 0.5; seed 1: 0.3. Mean 0.4, std √2·0.1.
    expect(s[0].oodAccuracy).toBeCloseTo(0.4, 15);
    expect(s[0].oodAccuracyStd).toBeCloseTo(Math.SQRT2 * 0.1, 15);
    expect(s[0].oodZLsvr).toBeCloseTo((0.3 + 0.7) / 2, 15);
    expect(s[0].oodFeatLsvr).toBe(0.7);
    expect(s[1]).toMatchObject({ seeds: 1, idAccuracy: 0.81, oodAccuracy: 0.5, idAccuracyStd: 0, oodAccuracyStd: 0 });
  });

  it('prints accuracy as mean±std in percent and spectra with four decimals', () => {
    const t = formatTable(summarize(rows)).split('\n');
    expect(t[0]).toMatch(/^γ\s+method\s+ID acc %\s+ID F1\s+SVE\(F\)\s+SVE\(Z\)\s+OOD acc %\s+OOD F1\s+LSVR\(F\)\s+LSVR\(Z\)$/);
    expect(t[2].split(/\s+/)).toEqual(['0%', 'lp', '75.00±7.07', '0.3750', '2.0000', '1.5000', '40.00±14.14', '0.2000', '0.7000', '0.5000']);
    expect(t[3].split(/\s+/)[0]).toBe('5%');
  });

  it('writes one CSV line per row at full precision', () => {
    const csv = resultsCsv(aggregateSeeds([row(0.1, 'nmtune', 'gaussian-noise', 1 / 3)])).split('\n');
    expect(csv[0]).toBe('gamma,method,domain,kind,rows,accuracy,macroF1,featSve,featLsvr,zSve,zLsvr,featSveRaw,featLsvrRaw,zSveRaw,zLsvrRaw,seeds,accuracyStd,macroF1Std');
    expect(csv[1]).toBe(`0.1,nmtune,gaussian-noise,ood,100,${1 / 3},${1 / 6},2,0.7,1.5,0.5,1,0.3,1.1,0.4,1,0,0`);
  });
});

describe('formatDuration', () => {
  it('formats durations as m:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(61.4)).toBe('1:01');
    expect(formatDuration(600)).toBe('10:00');
    expect(formatDuration(NaN)).toBe('?');
  });
});
