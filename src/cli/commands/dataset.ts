/**
 * `nmlab dataset <import|list|show|noise|fraction|corrupt>`: datasets in a project (DESIGN §5).
 * Imports are all-or-nothing; noise, fractions and corruption domains make derived datasets
 * and never edit the original.
 */
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type CliIO, type Command, type ParsedCommandArgs } from '../command';
import { CorruptionName, type DatasetManifest, type DatasetSummary } from '../../shared/contract/datasets';
import { readManifest } from '../../core/projects/manifest';
import { importFeatures, importIdx, importImageFolder } from '../../core/datasets/importers';
import { listDatasets, readDatasetManifest } from '../../core/datasets/store';
import { deriveNoisy } from '../../core/datasets/noise';
import { deriveCorruptions, deriveFraction } from '../../core/datasets/derive';

const USAGE = `Usage:
  nmlab dataset import --project DIR --name NAME SOURCE [--id ID] [--classes a,b,...]
                       [--test-fraction F] [--seed S] [--size HxW] [--strict-size] [--json]
      SOURCE is one of
        --images DIR                          DIR/<class>/*.png|jpg or DIR/<domain>/<class>/*
        --idx-images F --idx-labels F [--idx-test-images F --idx-test-labels F]
        --features F.npy|F.csv (--labels y.npy | --label-column NAME|INDEX)
      Mixed image sizes are resized to the most common size (or --size) unless --strict-size.
  nmlab dataset list --project DIR [--json]
  nmlab dataset show --project DIR --dataset ID [--json]
  nmlab dataset noise --project DIR --dataset ID --type symmetric|asymmetric --ratio R --seed S
                      [--classes 0,1] [--map 0:1,1:0] [--split train|all] [--id ID] [--json]
  nmlab dataset fraction --project DIR --dataset ID --fraction F --seed S [--split train|test|all] [--json]
  nmlab dataset corrupt --project DIR --dataset ID --corruptions rotation,inversion,edge,gaussian-noise,blur,low-contrast
                        [--severity 1-5] [--seed S] [--split test|train|all] [--no-clean] [--json]
`;

const SUBS = ['import', 'list', 'show', 'noise', 'fraction', 'corrupt'] as const;

function intList(text: string | undefined, flag: string): number[] | undefined {
  if (text === undefined) return undefined;
  const v = text.split(',').map((s) => Number(s.trim()));
  if (v.some((x) => !Number.isInteger(x) || x < 0)) throw new UsageError(`--${flag} must be comma-separated class indices`);
  return v;
}

function intOpt(args: ParsedCommandArgs, name: string): number | undefined {
  const v = numberOpt(args, name);
  if (v !== undefined && !Number.isInteger(v)) throw new UsageError(`--${name} must be an integer`);
  return v;
}

function splitOpt<T extends string>(args: ParsedCommandArgs, allowed: readonly T[]): T | undefined {
  const v = stringOpt(args, 'split');
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--split must be one of ${allowed.join(', ')}`);
  return v as T;
}

export const datasetCommand: Command = {
  name: 'dataset',
  summary: 'import, list and derive datasets (noise, fractions, corruption domains)',
  usage: USAGE,
  options: {
    project: { type: 'string' },
    name: { type: 'string' },
    id: { type: 'string' },
    dataset: { type: 'string' },
    images: { type: 'string' },
    'idx-images': { type: 'string' },
    'idx-labels': { type: 'string' },
    'idx-test-images': { type: 'string' },
    'idx-test-labels': { type: 'string' },
    features: { type: 'string' },
    labels: { type: 'string' },
    'label-column': { type: 'string' },
    classes: { type: 'string' },
    'test-fraction': { type: 'string' },
    seed: { type: 'string' },
    size: { type: 'string' },
    'strict-size': { type: 'boolean' },
    type: { type: 'string' },
    ratio: { type: 'string' },
    map: { type: 'string' },
    split: { type: 'string' },
    fraction: { type: 'string' },
    corruptions: { type: 'string' },
    severity: { type: 'string' },
    'no-clean': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  allowPositionals: true,
  async run(args, io) {
    const [sub, ...extra] = args.positionals;
    if (!sub) throw new UsageError('a subcommand is required');
    if (!(SUBS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}"`);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const project = requireOpt(args, 'project');
    await readManifest(project); // a clear error when DIR is not a project
    const json = args.values.json === true;
    const seed = intOpt(args, 'seed');
    switch (sub as (typeof SUBS)[number]) {
      case 'list': {
        const list = await listDatasets(project);
        if (json) printJson(io, list);
        else showList(io, list);
        return 0;
      }
      case 'show': {
        const m = await readDatasetManifest(project, requireOpt(args, 'dataset'));
        if (json) printJson(io, m);
        else showManifest(io, m);
        return 0;
      }
      case 'import':
        return done(io, json, await runImport(project, args, seed), 'imported');
      case 'noise': {
        const type = requireOpt(args, 'type');
        if (type !== 'symmetric' && type !== 'asymmetric') throw new UsageError('--type must be symmetric or asymmetric (pair swap is for paired data: `nmlab noise`)');
        const ratio = numberOpt(args, 'ratio');
        if (ratio === undefined) throw new UsageError('--ratio is required');
        if (seed === undefined) throw new UsageError('--seed is required (noise must be reproducible)');
        const map = stringOpt(args, 'map');
        const m = await deriveNoisy(project, requireOpt(args, 'dataset'), {
          type,
          ratio,
          seed,
          split: splitOpt(args, ['train', 'all'] as const),
          classes: intList(stringOpt(args, 'classes'), 'classes'),
          ...(map ? { map: Object.fromEntries(map.split(',').map((p) => p.split(':').map(Number))) as Record<number, number> } : {}),
          id: stringOpt(args, 'id'),
          name: stringOpt(args, 'name'),
        });
        return done(io, json, m, 'derived');
      }
      case 'fraction': {
        const fraction = numberOpt(args, 'fraction');
        if (fraction === undefined) throw new UsageError('--fraction is required');
        const m = await deriveFraction(project, requireOpt(args, 'dataset'), {
          fraction,
          seed: seed ?? 0,
          split: splitOpt(args, ['train', 'test', 'all'] as const),
          id: stringOpt(args, 'id'),
          name: stringOpt(args, 'name'),
        });
        return done(io, json, m, 'derived');
      }
      case 'corrupt': {
        const names = requireOpt(args, 'corruptions').split(',').map((s) => s.trim());
        const severity = intOpt(args, 'severity') ?? 3;
        if (severity < 1 || severity > 5) throw new UsageError('--severity must be 1..5');
        const corruptions = names.map((n) => {
          const p = CorruptionName.safeParse(n);
          if (!p.success) throw new UsageError(`unknown corruption "${n}"; choose from ${CorruptionName.options.join(', ')}`);
          return { name: p.data, severity };
        });
        const m = await deriveCorruptions(project, requireOpt(args, 'dataset'), {
          corruptions,
          seed: seed ?? 0,
          split: splitOpt(args, ['train', 'test', 'all'] as const),
          includeClean: args.values['no-clean'] !== true,
          id: stringOpt(args, 'id'),
          name: stringOpt(args, 'name'),
        });
        return done(io, json, m, 'derived');
      }
    }
  },
};

async function runImport(project: string, args: ParsedCommandArgs, seed: number | undefined): Promise<DatasetManifest> {
  const name = requireOpt(args, 'name');
  if (!name.trim()) throw new UsageError(`--name must not be blank (got "${name}")`);
  const common = {
    name,
    id: stringOpt(args, 'id'),
    classes: stringOpt(args, 'classes')?.split(',').map((s) => s.trim()),
    testFraction: numberOpt(args, 'test-fraction'),
    seed,
  };
  const kinds = ['images', 'idx-images', 'features'].filter((k) => stringOpt(args, k) !== undefined);
  if (kinds.length !== 1) throw new UsageError('give exactly one source: --images, --idx-images/--idx-labels, or --features');
  if (kinds[0] === 'images') {
    const size = stringOpt(args, 'size');
    let hw: [number, number] | undefined;
    if (size !== undefined) {
      const m = /^(\d+)(?:x(\d+))?$/.exec(size);
      if (!m) throw new UsageError(`--size must be N or HxW, got "${size}"`);
      hw = [Number(m[1]), Number(m[2] ?? m[1])];
    }
    return importImageFolder(project, { ...common, dir: stringOpt(args, 'images')!, size: hw, onSizeMismatch: args.values['strict-size'] === true ? 'error' : 'resize' });
  }
  if (kinds[0] === 'idx-images') {
    return importIdx(project, {
      ...common,
      images: requireOpt(args, 'idx-images'),
      labels: requireOpt(args, 'idx-labels'),
      testImages: stringOpt(args, 'idx-test-images'),
      testLabels: stringOpt(args, 'idx-test-labels'),
    });
  }
  const col = stringOpt(args, 'label-column');
  return importFeatures(project, {
    ...common,
    features: stringOpt(args, 'features')!,
    labels: stringOpt(args, 'labels'),
    ...(col !== undefined ? { labelColumn: /^-?\d+$/.test(col) ? Number(col) : col } : {}),
  });
}

function done(io: CliIO, json: boolean, m: DatasetManifest, verb: string): number {
  if (json) printJson(io, m);
  else {
    io.out(`${verb} dataset "${m.id}" (${m.name}): ${m.count} samples, ${m.classes.length} classes${m.domains.length > 1 ? `, domains ${m.domains.join(', ')}` : ''}\n`);
    for (const n of m.provenance.notes) io.out(`  note: ${n}\n`);
    if (m.derived?.op === 'noise') io.out(`  flipped ${m.derived.noise.flippedCount} labels (${m.derived.noise.type}, ratio ${m.derived.noise.ratio}, seed ${m.derived.noise.seed})\n`);
  }
  return 0;
}

function showList(io: CliIO, list: DatasetSummary[]): void {
  if (list.length === 0) {
    io.out('no datasets; add one with `nmlab dataset import`\n');
    return;
  }
  const w = Math.max(2, ...list.map((d) => d.id.length));
  io.out(`${'ID'.padEnd(w)}  KIND      SAMPLES  CLASSES  DERIVED FROM\n`);
  for (const d of list) {
    io.out(`${d.id.padEnd(w)}  ${d.kind.padEnd(8)}  ${String(d.count).padStart(7)}  ${String(d.classes).padStart(7)}  ${d.parent ? `${d.parent} (${d.op})` : '-'}\n`);
  }
}

function showManifest(io: CliIO, m: DatasetManifest): void {
  io.out(`${m.id}: ${m.name}\n  kind ${m.kind}, ${m.count} samples, created ${m.createdAt}\n`);
  io.out(`  classes (${m.classes.length}): ${m.classes.map((c, i) => `${c}=${m.classCounts[i]}`).join(', ')}\n`);
  io.out(`  domains: ${m.domains.join(', ')}\n`);
  if (m.image) io.out(`  images ${m.image.height}×${m.image.width}×${m.image.channels}\n`);
  if (m.featureDim) io.out(`  features ${m.featureDim}-d\n`);
  if (m.split) io.out(`  split: ${m.split.train} train / ${m.split.test} test (${m.split.method})\n`);
  if (m.derived) io.out(`  derived from ${m.derived.parent} by ${m.derived.op}\n`);
  if (m.derived?.op === 'noise') {
    io.out(`  noise: ${m.derived.noise.type} ${m.derived.noise.ratio}, seed ${m.derived.noise.seed}, ${m.derived.noise.flippedCount} flipped\n  transition matrix:\n`);
    for (const row of m.derived.noise.transitionMatrix) io.out(`    ${row.map((v) => v.toFixed(3)).join(' ')}\n`);
  }
}
