/**
 * `nmlab demo`: NMLab's main job, the paper's noise study at small scale on the embedded
 * Fashion-MNIST subset (src/core/demo; protocol and timings in docs/demo.md).
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { UsageError, numberOpt, printJson, stringOpt, type Command } from '../command';
import { FULL_CONFIG, QUICK_CONFIG, STANDARD_CONFIG, defaultDemoDir, type DemoConfig } from '../../core/demo/config';
import { formatClaim } from '../../shared/contract/compare';
import { createLabBackend } from '../../core/backend';
import { runDemo } from '../../core/demo/study';
import { formatDuration } from '../../core/demo/progress';
import type { DemoResults } from '../../core/demo/results';

const USAGE = `Usage: nmlab demo [--out DIR] [--quick | --full] [--gammas 0,10,30] [--workers N] [--json]

Runs the paper's noise study at small scale, out of the box: for each pre-training label-noise
ratio γ it pre-trains three CNN replicates on noisy labels (6 Fashion-MNIST classes), exports
them to ONNX, extracts features of a downstream task with 4 other classes and of 4 corruption
domains (rotation, edge, Gaussian noise, blur), computes SVE and LSVR, and runs LP, MLP and
NMTune (paper preset), tuned on the clean downstream images and evaluated in domain (ID) and
on every corruption domain (OOD). It ends with a verdict on each of the paper's claims
(supported, contradicted or inconclusive, from the 95 % intervals). Uses the whole
Fashion-MNIST when installed (\`apt install dataset-fashion-mnist\`), else the embedded subset.

It is a built-in study run by the same queue as \`nmlab run\`: everything is saved in a project
at DIR (its jobs show in Experiments, the runs table and Compare); running the command again
resumes where it stopped and never redoes a finished job. Results: DIR/results/demo-results.json
and .csv, and the charts accuracy-id.svg, accuracy-ood.svg, sve-id.svg, lsvr-ood.svg.
Measured times in docs/demo.md.

Options:
  --out DIR        project folder (default <NMLAB_HOME>/demo-project, which the app's "Open demo
                   project" opens too); new, empty, or an earlier demo project
  --quick          tiny sizes (seconds, for tests); results are not meaningful
  --full           the paper's five γ and twice the pre-training data (≈ 2.4× the CPU time)
  --gammas LIST    noise ratios in percent (default 0,10,30; --full 0,5,10,20,30)
  --workers N      jobs run at once, one worker process each (default: 2, or 1 on a one-core
                   machine)
  --json           print the results JSON on stdout (the table goes to stderr)

Progress with ETA goes to stderr. Ctrl-C stops after the current step; run again to resume.
`;

function parseGammas(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const vals = text.split(',').map((s) => Number(s.trim()));
  if (vals.length === 0 || vals.some((v) => !Number.isFinite(v) || v < 0 || v > 100)) throw new UsageError(`--gammas must be comma-separated percentages in [0, 100], got "${text}"`);
  const out = [...new Set(vals.map((v) => Math.round(v * 10) / 1000))].sort((a, b) => a - b);
  return out;
}

/** The pre-training engines of the backbones, each with its count: 'onnxruntime, NCHWc convolutions (9 backbones)'. */
function engines(backbones: DemoResults['backbones']): string {
  const count = new Map<string, number>();
  for (const b of backbones) {
    const name = b.backend ?? 'an unrecorded engine';
    count.set(name, (count.get(name) ?? 0) + 1);
  }
  return [...count].map(([name, n]) => `${name} (${n} backbone${n === 1 ? '' : 's'})`).join(', ');
}

export const demoCommand: Command = {
  name: 'demo',
  summary: "run the paper's noise study (Fashion-MNIST, 3 replicates per γ, a verdict per claim)",
  usage: USAGE,
  options: {
    out: { type: 'string' },
    quick: { type: 'boolean' },
    full: { type: 'boolean' },
    gammas: { type: 'string' },
    workers: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const json = args.values.json === true;
    if (args.values.quick === true && args.values.full === true) throw new UsageError('--quick and --full exclude each other');
    const base = args.values.quick === true ? QUICK_CONFIG : args.values.full === true ? FULL_CONFIG : STANDARD_CONFIG;
    const gammas = parseGammas(stringOpt(args, 'gammas'));
    const config: DemoConfig = { ...base, ...(gammas ? { gammas } : {}) };
    const dir = resolve(stringOpt(args, 'out') ?? defaultDemoDir());
    const workers = numberOpt(args, 'workers');
    if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1 && workers <= 64)) throw new UsageError(`--workers must be an integer from 1 to 64, got ${workers}`);
    const controller = new AbortController();
    const onSigint = (): void => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      io.err(`nmlab demo (${config.preset}): project ${dir}\n`);
      const backend = createLabBackend({ experimentConcurrency: workers ?? Math.min(2, availableParallelism()) });
      let outcome;
      try {
        outcome = await runDemo({ dir, config, experiments: backend.experiments, progress: { write: io.err, isTTY: process.stderr.isTTY === true }, signal: controller.signal });
      } finally {
        await backend.dispose();
      }
      const { results, table, resultsDir, experimentId } = outcome;
      const t = results.timing;
      const reused = t.stages.filter((s) => s.reused).length;
      const footer =
        `\nID: tuned on clean ${results.protocol.downstreamClasses.join('/')} images, tested on held-out ones; ` +
        `OOD: mean over ${results.protocol.oodTargets.join(', ')}.\n` +
        `SVE/LSVR: F = backbone features, Z = tuned features (LP: Z = F); rows L2-normalised and centred.\n` +
        `Pre-trained on ${engines(results.backbones)}.\n` +
        `Wall time ${formatDuration(t.wallSeconds)} (${t.wallSeconds.toFixed(1)} s, CPU ${t.cpuSeconds.toFixed(1)} s, load ${t.loadAverage.map((l) => l.toFixed(2)).join(' ')}, ${t.cores} cores)` +
        `${reused ? `; ${reused} of ${t.stages.length} jobs reused from earlier runs` : ''}.\n` +
        `Study ${experimentId}: \`nmlab experiment compare ${experimentId} --project ${dir}\`; runs in ${dir}/runs.\n` +
        `Results: ${resultsDir}/demo-results.json, demo-results.csv, ${results.files.charts.map((c) => c.split('/').pop()).join(', ')}\n` +
        (outcome.claims.length ? `\nThe paper's claims, from the 95 % intervals:\n${outcome.claims.map((k) => `  ${formatClaim(k)}\n`).join('')}` : '');
      if (json) {
        io.err(table + footer);
        printJson(io, results);
      } else io.out(table + footer);
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
};
