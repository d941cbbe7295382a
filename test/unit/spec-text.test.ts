import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { convertText, parseNumberList, parseText, setInText, toText, validateSpec } from '../../src/renderer/src/components/experiments/specText';
import { parseStudySpec } from '../../src/core/experiments/spec';
import { problemLine } from '../../src/shared/contract/studyErrors';

const typed = `# my study, typed by hand
name: Fashion noise   # the title in tables
layout: noise-study
backbones: [{id: resnet-tiny.onnx}]
tasks:
  - id: fmnist
    dataset: fmnist
methods:
  - method: nmtune
    params: {lr: 0.002}  # tuned by hand
`;

describe('builder spec text', () => {
  it('a form edit changes only its key: comments, order and hand edits stay', () => {
    const next = setInText(typed, 'yaml', ['seeds'], [0, 1, 2])!;
    expect(next).toContain('# my study, typed by hand');
    expect(next).toContain('# the title in tables');
    // The YAML printer keeps comments (it may normalise the spaces before them).
    expect(next).toMatch(/params: \{lr: 0\.002\} +# tuned by hand/);
    expect(next).toContain('seeds: [0, 1, 2]');
    const again = setInText(next, 'yaml', ['defaults', 'epochs'], 12)!;
    expect(parse(again)).toMatchObject({ name: 'Fashion noise', seeds: [0, 1, 2], defaults: { epochs: 12 }, methods: [{ method: 'nmtune', params: { lr: 0.002 } }] });
    // Removing a key removes only it.
    expect(parse(setInText(again, 'yaml', ['seeds'], undefined)!)).not.toHaveProperty('seeds');
    expect(setInText(again, 'yaml', ['seeds'], undefined)).toContain('# tuned by hand');
  });

  it('never writes into text that does not parse', () => {
    const broken = 'name: x\ntasks: [unclosed\n';
    expect(parseText(broken, 'yaml').syntaxError).toMatch(/^YAML line \d+: /);
    expect(setInText(broken, 'yaml', ['name'], 'y')).toBeNull();
    expect(setInText('{"name": ', 'json', ['name'], 'y')).toBeNull();
    expect(convertText(broken, 'yaml', 'json')).toBeNull();
  });

  it('JSON text is edited as JSON and converts both ways', () => {
    const json = convertText(typed, 'yaml', 'json')!;
    expect(JSON.parse(json)).toEqual(parse(typed));
    const edited = setInText(json, 'json', ['methods', 1], { method: 'lp' })!;
    expect(JSON.parse(edited).methods).toEqual([{ method: 'nmtune', params: { lr: 0.002 } }, { method: 'lp' }]);
    expect(parse(convertText(edited, 'json', 'yaml')!)).toEqual(JSON.parse(edited));
    // A fresh text writes number lists on one line, objects as blocks.
    expect(toText({ seeds: [0, 1], tasks: [{ id: 'a', dataset: 'a' }] }, 'yaml')).toBe('seeds: [0, 1]\ntasks:\n  - id: a\n    dataset: a\n');
    // Writing into an empty text starts a block mapping.
    expect(setInText('', 'yaml', ['name'], 'n')).toBe('name: n\n');
  });

  it('schema errors name the key path', () => {
    const { spec, issues } = validateSpec({ ...parse(typed), seeds: '0-2', tasks: [{ id: 'fmnist', dataset: 'fmnist', test: 'val' }] });
    expect(spec).toBeNull();
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(['seeds', 'tasks[0].test']));
    expect(validateSpec(parse(typed)).spec?.methods[0]).toMatchObject({ method: 'nmtune', preset: 'paper', params: { lr: 0.002 } });
  });

  it('the builder lists the same sentences the CLI prints (one describer, src/shared/contract/studyErrors.ts)', () => {
    const base = parse(typed) as Record<string, unknown>;
    const bad: Array<[Record<string, unknown>, string[]]> = [
      [{ ...base, seeds: '0-2' }, ['seeds: expected array, got "0-2"; ranges are written as a list, e.g. [0, 1, 2]']],
      [{ ...base, tasks: [{ id: 'fmnist', dataset: 'fmnist', tset: 'test' }] }, ['tasks[0].tset: unknown key; did you mean "test"?']],
      [{ ...base, methods: [{ method: 'nmtune', params: { lr: 'fast' } }] }, ['methods[0].params.lr: expected number, got "fast"']],
      [
        { ...base, fractions: 0.5, pretrain: { dataset: 'fmnist', gammas: [0, 30] }, nmae: 'x' },
        ['nmae: unknown key; did you mean "name"?', 'pretrain.gammas[1]: must be at most 1, got 30; noise ratios are fractions in [0, 1] (30 % is 0.3)', 'fractions: expected array, got 0.5; write a list, e.g. [0.5]'],
      ],
    ];
    for (const [raw, lines] of bad) {
      const shown = validateSpec(raw).issues.map(problemLine);
      expect(shown.sort()).toEqual([...lines].sort());
      let cli = '';
      try {
        parseStudySpec(raw, 'spec.yaml');
      } catch (err) {
        cli = (err as Error).message;
      }
      // The CLI's message: a header, the same lines indented, a pointer to the docs.
      expect(cli).toBe(`spec.yaml is not a valid study spec:\n  ${validateSpec(raw).issues.map(problemLine).join('\n  ')}\n(see docs/study-spec.md)`);
    }
  });

  it('number lists as typed, with a hint for ranges', () => {
    expect(parseNumberList('0, 0.1 0.3')).toEqual({ values: [0, 0.1, 0.3], error: null });
    expect(parseNumberList('0-2').error).toBe('"0-2" is not a number; ranges are written as a list, e.g. 0, 1, 2');
    expect(parseNumberList(' ').values).toBeNull();
  });
});
