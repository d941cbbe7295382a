/**
 * `nmlab run SPEC.yaml|SPEC.json --project DIR`: create an experiment from a spec and run its
 * queue in this process until every job has ended, printing progress to stderr. Killing this
 * process at any moment leaves the project readable; `nmlab experiment resume ID` carries on.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type Command } from '../command';
import { createLabBackend } from '../../core/backend';
import { NmlabError } from '../../shared/errors';
import { parseSpec } from '../../core/experiments/store';
import type { ExperimentDetail, ExperimentEvent } from '../../shared/contract/experiments';

const USAGE = `Usage:
  nmlab run SPEC.yaml --project DIR [--id ID] [--concurrency N] [--json]

Creates an experiment from SPEC (YAML or JSON) in the project and runs every job in worker
processes, N at a time (default: cores − 1). Progress goes to stderr; the final state (and, with
--json, the whole experiment) to stdout. Exit code 0 when every job succeeded, 1 otherwise.
Resume an interrupted run with \`nmlab experiment resume ID --project DIR\`.

A spec (paths are inside the project; {backbone}, {task} and {gamma} are filled in per job):
  name: Noise study
  preset: noise-study            # or method-comparison, custom (the compare view's layout)
  backbones: [{ id: g0, gamma: 0 }, { id: g10, gamma: 0.1 }]
  tasks:
    - { type: id, id: cifar, train: { features: features/{backbone}/cifar/train.npy, labels: features/{backbone}/cifar/train.labels.npy },
        test: { features: features/{backbone}/cifar/test.npy, labels: features/{backbone}/cifar/test.labels.npy } }
    - { type: ood, id: cifar-ood, train: {...}, targets: [{ name: rotation, features: ..., labels: ... }] }
  methods: [{ method: lp }, { method: mlp }, { method: nmtune, preset: paper, params: { lr: 0.001 } }]
  fractions: [1]
  seeds: [0, 1, 2]
  defaults: { epochs: 30 }      # overrides for every method (epochs, lr, weightDecay, batchSize, ...)
`;

/** Parse a spec file's text: JSON when it looks like JSON, YAML otherwise (YAML is a superset). */
export async function readSpecFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new NmlabError('NOT_FOUND', `cannot read the spec ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new NmlabError('BAD_FILE', `${file} is neither valid YAML nor JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A one-line-per-change progress printer for stderr. */
export function progressPrinter(err: (t: string) => void): (e: ExperimentEvent) => void {
  let last = '';
  return (e) => {
    if (e.type !== 'queue') return;
    const c = e.summary.counts;
    const eta = e.summary.etaSeconds !== null ? `, ETA ${Math.round(e.summary.etaSeconds)} s` : '';
    const line = `${e.experimentId}: ${c.succeeded}/${e.summary.total} done, ${c.running} running, ${c.pending} pending${c.failed ? `, ${c.failed} failed` : ''}${c.interrupted ? `, ${c.interrupted} interrupted` : ''}${c.cancelled ? `, ${c.cancelled} cancelled` : ''}${eta}`;
    if (line !== last) err(line + '\n');
    last = line;
  };
}

export function finalReport(d: ExperimentDetail): { code: number; text: string } {
  const c = d.summary.counts;
  const ok = c.succeeded === d.summary.total;
  const text = `${d.summary.id}: ${c.succeeded} of ${d.summary.total} jobs succeeded${ok ? '' : ` (${c.failed} failed, ${c.cancelled} cancelled, ${c.interrupted} interrupted)`}\n`;
  return { code: ok ? 0 : 1, text };
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run an experiment spec (YAML/JSON) in a project',
  usage: USAGE,
  options: { project: { type: 'string' }, id: { type: 'string' }, concurrency: { type: 'string' }, json: { type: 'boolean' } },
  allowPositionals: true,
  async run(args, io) {
    const [specFile, ...extra] = args.positionals;
    if (!specFile) throw new UsageError('a spec file is required');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const projectDir = requireOpt(args, 'project');
    const concurrency = numberOpt(args, 'concurrency');
    if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) throw new UsageError('--concurrency must be a positive integer');
    const spec = await readSpecFile(specFile);
    const backend = createLabBackend({ experimentConcurrency: concurrency });
    const stop = backend.onEvent('experiment', progressPrinter(io.err));
    try {
      const created = await backend.experiments.create(projectDir, parseSpec(spec, specFile), stringOpt(args, 'id'));
      const id = created.summary.id;
      io.err(`experiment ${id}: ${created.jobs.length} jobs, ${backend.experiments.defaultConcurrency} at a time\n`);
      await backend.experiments.start(projectDir, id);
      await backend.experiments.waitIdle(projectDir, id);
      const d = await backend.experiments.get(projectDir, id);
      const { code, text } = finalReport(d);
      if (args.values.json === true) printJson(io, d);
      else io.out(text);
      return code;
    } finally {
      stop();
      await backend.dispose();
    }
  },
};
