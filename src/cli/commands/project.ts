/**
 * `nmlab project <create|open|list|rename|forget>`: projects on disk (DESIGN §5), through the
 * same contract and validation as the app (a direct-call transport over the lab backend).
 */
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type CliIO, type Command, type ParsedCommandArgs } from '../command';
import { importBackbone } from '../../core/features/backbone';
import type { PreprocessSpec } from '../../shared/contract/backbones';
import { createDirectClient, createLabBackend } from '../../core/backend';
import type { ProjectInfo, RecentProject } from '../../shared/contract/projects';

const USAGE = `Usage:
  nmlab project create DIR --name NAME [--json]   make a project in a new or empty folder
  nmlab project open DIR [--json]                 check a project and add it to the recent list
  nmlab project rename DIR --name NAME [--json]   give a project a new name
  nmlab project list [--json]                     recently opened projects, newest first
  nmlab project forget DIR [--json]               remove a project from the recent list (files untouched)
  nmlab project import-backbone DIR MODEL.onnx [--id ID] [--gamma G] [--size HxW|N] [--channels C]
                       [--mean a,b,c] [--std a,b,c] [--output NAME] [--json]
                                                  copy an ONNX model into DIR/backbones/<id>/ with its
                                                  backbone.json (preprocessing; γ = its pre-training noise)

The recent list lives in $NMLAB_HOME/recent.json (default ~/.config/nmlab).
`;

const SUBCOMMANDS = ['create', 'open', 'rename', 'list', 'forget', 'import-backbone'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

export const projectCommand: Command = {
  name: 'project',
  summary: 'create, open, rename and list projects; import an ONNX backbone into one',
  usage: USAGE,
  options: {
    name: { type: 'string' },
    json: { type: 'boolean' },
    id: { type: 'string' },
    gamma: { type: 'string' },
    size: { type: 'string' },
    channels: { type: 'string' },
    mean: { type: 'string' },
    std: { type: 'string' },
    output: { type: 'string' },
  },
  allowPositionals: true,
  async run(args, io) {
    const [sub, dir, ...rest] = args.positionals;
    if (!sub) throw new UsageError('a subcommand is required');
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}"`);
    if (sub === 'import-backbone') return importBackboneCli(args, io, dir, rest);
    const extra = rest;
    const plain = sub as Exclude<Sub, 'import-backbone'>;
    const needsDir = sub !== 'list';
    if (needsDir && !dir) throw new UsageError(`project ${sub} needs a folder`);
    if (!needsDir && dir) throw new UsageError(`project ${sub} takes no folder`);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const json = args.values.json === true;

    const backend = createLabBackend();
    const api = createDirectClient(backend);
    try {
      switch (plain) {
        case 'create':
          return showProject(io, json, await api.projects.create({ dir, name: requireOpt(args, 'name') }), 'created');
        case 'open':
          return showProject(io, json, await api.projects.open({ dir }), 'opened');
        case 'rename':
          return showProject(io, json, await api.projects.rename({ dir, name: requireOpt(args, 'name') }), 'renamed');
        case 'list':
          return showList(io, json, await api.projects.listRecent({}));
        case 'forget': {
          const r = await api.projects.forget({ dir });
          if (json) printJson(io, r);
          else io.out(r.forgotten ? `forgot ${dir}\n` : `${dir} was not in the recent list\n`);
          return 0;
        }
      }
    } finally {
      await backend.dispose();
    }
  },
};

/** Numbers of a comma-separated option (`--mean 0.5,0.5,0.5`). */
function numbers(args: ParsedCommandArgs, name: string): number[] | undefined {
  const text = stringOpt(args, name);
  if (text === undefined) return undefined;
  const xs = text.split(',').map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} must be comma-separated numbers, got "${text}"`);
  return xs;
}

async function importBackboneCli(args: ParsedCommandArgs, io: CliIO, dir: string | undefined, rest: string[]): Promise<number> {
  const [model, ...extra] = rest;
  if (!dir || !model) throw new UsageError('project import-backbone needs the project folder and an .onnx file');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const gamma = numberOpt(args, 'gamma');
  if (gamma !== undefined && !(gamma >= 0 && gamma <= 1)) throw new UsageError(`--gamma is a fraction in [0, 1] (30 % is 0.3), got ${gamma}`);
  const size = stringOpt(args, 'size');
  const hw = size === undefined ? undefined : size.split('x').map(Number);
  if (hw && (hw.length > 2 || hw.some((v) => !Number.isInteger(v) || v < 1))) throw new UsageError(`--size is N or HxW, got "${size}"`);
  const channels = numberOpt(args, 'channels') ?? 3;
  const mean = numbers(args, 'mean');
  const std = numbers(args, 'std');
  const preprocess: PreprocessSpec = {
    ...(hw ? { inputSize: [channels, hw[0], hw[1] ?? hw[0]] as [number, number, number] } : {}),
    ...(mean ? { mean } : {}),
    ...(std ? { std } : {}),
  };
  const m = await importBackbone(dir, model, {
    ...(stringOpt(args, 'id') ? { id: stringOpt(args, 'id') } : {}),
    ...(stringOpt(args, 'output') ? { outputNode: stringOpt(args, 'output') } : {}),
    preprocess,
    provenance: { source: 'import', createdAt: new Date().toISOString(), notes: `imported from ${model}`, ...(gamma !== undefined ? { noise: { type: 'symmetric', ratio: gamma } } : {}) },
  });
  if (args.values.json === true) printJson(io, m);
  else io.out(`imported backbone "${m.id}" into ${dir}/backbones/${m.id} (${m.output.node}, ${m.output.featureDim} features${gamma !== undefined ? `, γ = ${gamma}` : ''})\n`);
  return 0;
}

function showProject(io: CliIO, json: boolean, info: ProjectInfo, verb: string): number {
  if (json) printJson(io, info);
  else io.out(`${verb} project "${info.manifest.name}" in ${info.dir}\n`);
  return 0;
}

function showList(io: CliIO, json: boolean, list: RecentProject[]): number {
  if (json) {
    printJson(io, list);
    return 0;
  }
  if (list.length === 0) {
    io.out('no recent projects; create one with `nmlab project create DIR --name NAME`\n');
    return 0;
  }
  const width = Math.max(...list.map((p) => p.name.length));
  for (const p of list) {
    io.out(`${p.name.padEnd(width)}  ${p.openedAt}  ${p.dir}${p.available ? '' : '  (missing)'}\n`);
  }
  return 0;
}
