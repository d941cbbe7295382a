import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { convertText, parseNumberList, parseText, pretrainNoiseEdits, setAllInText, setInText, toText, validateSpec, type PretrainNoiseChange, type SpecFormat } from '../../src/renderer/src/components/experiments/specText';
import { classLabel, mapRows, readClassMap, withMapEntry } from '../../src/renderer/src/components/classMap';
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

/** What the builder does on a noise control: the keys it writes, into the text as it is now. */
function changeNoise(text: string, change: PretrainNoiseChange, format: SpecFormat = 'yaml'): string {
  return setAllInText(text, format, pretrainNoiseEdits(parseText(text, format).raw, change))!;
}

const withPretrain = `${typed}pretrain:
  dataset: fmnist   # the project's Fashion-MNIST
  gammas: [0, 0.3]
`;

describe('builder pre-training noise (paper §7.3)', () => {
  it('asymmetric with a class map: each control writes its own key of pretrain.noise, hand edits stay', () => {
    let t = changeNoise(withPretrain, { type: 'asymmetric' });
    expect(parse(t).pretrain.noise).toEqual({ type: 'asymmetric' });
    // Nothing to flip yet: the shared describer says so at the map's key.
    expect(validateSpec(parse(t)).issues.map(problemLine)).toEqual(['pretrain.noise.map: asymmetric noise needs a class map with at least one entry (source class: target class) or at least 2 classes']);
    t = changeNoise(t, { map: withMapEntry(readClassMap(parse(t).pretrain.noise.map), 0, 6) });
    t = changeNoise(t, { seed: 7 });
    // A comment typed inside the noise block survives the next edits.
    t = t.replace('    type: asymmetric', '    type: asymmetric  # shirts look like T-shirts');
    t = changeNoise(t, { map: withMapEntry(readClassMap(parse(t).pretrain.noise.map), 2, 4) });
    expect(t).toContain('# the project\'s Fashion-MNIST');
    expect(t).toContain('# shirts look like T-shirts');
    expect(t).toContain('# tuned by hand');
    expect(t).toContain('map: {"0": 6, "2": 4}');
    const spec = validateSpec(parse(t)).spec!;
    expect(spec.pretrain!.noise).toEqual({ type: 'asymmetric', seed: 7, map: { '0': 6, '2': 4 } });
    // "unchanged" removes the entry; the last one removes the map.
    t = changeNoise(t, { map: withMapEntry(readClassMap(parse(t).pretrain.noise.map), 0, null) });
    expect(parse(t).pretrain.noise.map).toEqual({ '2': 4 });
    t = changeNoise(t, { map: withMapEntry(readClassMap(parse(t).pretrain.noise.map), 2, null) });
    expect(parse(t).pretrain.noise).toEqual({ type: 'asymmetric', seed: 7 });
  });

  it('symmetric drops classes and map but keeps the seed; a seed alone brings the default type', () => {
    const asym = changeNoise(changeNoise(withPretrain, { type: 'asymmetric' }), { map: { '1': 3 } }).replace('map:', 'classes: [1, 3]\n    map:');
    expect(validateSpec(parse(asym)).spec?.pretrain?.noise).toEqual({ type: 'asymmetric', seed: 0, classes: [1, 3], map: { '1': 3 } });
    const sym = changeNoise(changeNoise(asym, { seed: 5 }), { type: 'symmetric' });
    expect(parse(sym).pretrain.noise).toEqual({ type: 'symmetric', seed: 5 });
    expect(validateSpec(parse(sym)).issues).toEqual([]);
    expect(parse(changeNoise(withPretrain, { seed: 3 })).pretrain.noise).toEqual({ type: 'symmetric', seed: 3 });
    // Clearing the seed leaves the schema's default (0).
    expect(parse(changeNoise(changeNoise(withPretrain, { seed: 3 }), { seed: null })).pretrain.noise).toEqual({ type: 'symmetric' });
  });

  it('JSON text gets the same block, and the form reads back a map typed by hand', () => {
    const json = changeNoise(changeNoise(convertText(withPretrain, 'yaml', 'json')!, { type: 'asymmetric' }, 'json'), { map: { '5': 7 } }, 'json');
    expect(JSON.parse(json).pretrain.noise).toEqual({ type: 'asymmetric', map: { '5': 7 } });
    // YAML keys written as numbers read as the same map; junk entries are left to the schema's message.
    const hand = parse('pretrain: {noise: {type: asymmetric, map: {3: 5, x: 1, 4: two}}}');
    expect(readClassMap(hand.pretrain.noise.map)).toEqual({ '3': 5 });
    expect(validateSpec({ ...parse(typed), pretrain: { dataset: 'fmnist', gammas: [0.1], noise: { type: 'asymmetric', map: { '3': 3 } } } }).issues.map(problemLine)).toEqual([
      'pretrain.noise.map: the class map sends class 3 to itself; a flip must change the class, got {"3":3}',
    ]);
  });

  it('class labels and rows of the map editor', () => {
    expect(classLabel(['T-shirt/top', 'Trouser'], 1)).toBe('1 · Trouser');
    // Names an import made up for unnamed classes add nothing.
    expect(classLabel(['class-0', 'class-1'], 1)).toBe('class 1');
    expect(classLabel(['0', '1'], 0)).toBe('class 0');
    expect(withMapEntry({ '9': 1 }, 2, 0)).toEqual({ '2': 0, '9': 1 });
    expect(Object.keys(withMapEntry({ '9': 1 }, 2, 0))).toEqual(['2', '9']);
    // A class the map names beyond the dataset is shown, so it can be removed.
    expect(mapRows(3, { '1': 2, '12': 0 })).toEqual([0, 1, 2, 12]);
  });
});
