import { describe, expect, it } from 'vitest';
import { parseFeaturesCsv } from '../../src/core/arrays/csv';

describe('parseFeaturesCsv', () => {
  it('detects a header and takes the label column by name', () => {
    const r = parseFeaturesCsv('a,b,label,c\n1,2,0,3\n4.5,-5e-1,2,"6"\n\n', 'f.csv', { labelColumn: 'label' });
    expect(r.m).toBe(2);
    expect(r.d).toBe(3);
    expect(Array.from(r.data)).toEqual([1, 2, 3, 4.5, -0.5, 6]);
    expect(Array.from(r.labels!)).toEqual([0, 2]);
    expect(r.columns).toEqual(['a', 'b', 'c']);
  });
  it('without header, label by negative index; without label column, all features', () => {
    const r = parseFeaturesCsv('1,2,1\n3,4,0\n', 'f.csv', { labelColumn: -1 });
    expect(Array.from(r.data)).toEqual([1, 2, 3, 4]);
    expect(Array.from(r.labels!)).toEqual([1, 0]);
    const all = parseFeaturesCsv('1,2,1\r\n3,4,0\r\n', 'f.csv');
    expect(all.d).toBe(3);
    expect(all.labels).toBeUndefined();
  });
  it('errors name file:line:column', () => {
    expect(() => parseFeaturesCsv('x,y\n1,2\n3,abc\n', 'f.csv')).toThrow('f.csv:3:2: "abc" is not a number');
    expect(() => parseFeaturesCsv('1,2\n3,NaN\n', 'f.csv')).toThrow('f.csv:2:2: "NaN" is a non-finite value (NaN and Inf are not allowed in features)');
    expect(() => parseFeaturesCsv('1,2\n3,-inf\n', 'f.csv')).toThrow(/f\.csv:2:2: .*non-finite/);
    expect(() => parseFeaturesCsv('1,2\n3,1e999\n', 'f.csv')).toThrow('f.csv:2:2: "1e999" overflows to Infinity');
    expect(() => parseFeaturesCsv('1,2\n3\n', 'f.csv')).toThrow('f.csv:2: expected 2 columns, found 1');
    expect(() => parseFeaturesCsv('1,2\n3,\n', 'f.csv')).toThrow('f.csv:2:2: "" is not a number');
  });
  it('checks labels', () => {
    expect(() => parseFeaturesCsv('1,0.5\n', 'f.csv', { labelColumn: 1 })).toThrow(/f\.csv:1:2: label "0\.5" is not a class index/);
    expect(() => parseFeaturesCsv('1,3\n', 'f.csv', { labelColumn: 1, numClasses: 3 })).toThrow(/f\.csv: label 0 is 3, outside 0\.\.2/);
    expect(() => parseFeaturesCsv('1,2\n', 'f.csv', { labelColumn: 'label' })).toThrow(/no header row/);
    expect(() => parseFeaturesCsv('a,b\n1,2\n', 'f.csv', { labelColumn: 'y' })).toThrow(/no column named "y"/);
    expect(() => parseFeaturesCsv('1,2\n', 'f.csv', { labelColumn: 5 })).toThrow(/out of range/);
    expect(() => parseFeaturesCsv('\n\n', 'f.csv')).toThrow(/empty/);
  });
});
