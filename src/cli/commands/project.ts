/**
 * `nmlab project <create|open|list|rename|forget>`: projects on disk (DESIGN §5), through the
 * same contract and validation as the app (a direct-call transport over the lab backend).
 */
import { UsageError, printJson, requireOpt, type CliIO, type Command } from '../command';
import { createDirectClient, createLabBackend } from '../../core/backend';
import type { ProjectInfo, RecentProject } from '../../shared/contract/projects';

const USAGE = `Usage:
  nmlab project create DIR --name NAME [--json]   make a project in a new or empty folder
  nmlab project open DIR [--json]                 check a project and add it to the recent list
  nmlab project rename DIR --name NAME [--json]   give a project a new name
  nmlab project list [--json]                     recently opened projects, newest first
  nmlab project forget DIR [--json]               remove a project from the recent list (files untouched)

The recent list lives in $NMLAB_HOME/recent.json (default ~/.config/nmlab).
`;

const SUBCOMMANDS = ['create', 'open', 'rename', 'list', 'forget'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

export const projectCommand: Command = {
  name: 'project',
  summary: 'create, open, rename and list projects',
  usage: USAGE,
  options: { name: { type: 'string' }, json: { type: 'boolean' } },
  allowPositionals: true,
  async run(args, io) {
    const [sub, dir, ...extra] = args.positionals;
    if (!sub) throw new UsageError('a subcommand is required');
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}"`);
    const needsDir = sub !== 'list';
    if (needsDir && !dir) throw new UsageError(`project ${sub} needs a folder`);
    if (!needsDir && dir) throw new UsageError(`project ${sub} takes no folder`);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const json = args.values.json === true;

    const backend = createLabBackend();
    const api = createDirectClient(backend);
    try {
      switch (sub as Sub) {
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
