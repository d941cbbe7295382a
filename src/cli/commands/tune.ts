/**
 * `nmlab tune`: linear probing, MLP tuning or black-box NMTune (paper §6.1, eq. 4–7) on feature
 * files, through runTuneFit (src/core/jobs/kinds/tune.ts): accuracy, macro-F1 and the spectrum
 * of the tuned features Z on the test set and every `--target`. Every tuning parameter is a
 * flag derived from the `TuneParams` schema (src/shared/contract/tuning.ts): `terms.mse`
 * becomes `--terms-mse`, `weightDecay` `--weight-decay`. Without --project the fit runs here and
 * nothing is saved; with --project it is a one-job study (src/core/experiments/oneFit.ts) run
 * on the project's queue as `nmlab run` runs a spec, so it shows in Experiments and Compare.
 */
import { resolve } from 'node:path';
import { UsageError, printJson, requireOpt, stringOpt, type Command, type ParsedCommandArgs } from '../command';
import { TuneParams, tuneDefaults, tuneParamFields, type TuneOverrides, type TuneParamField, type TuneRunResult } from '../../shared/contract/tuning';
import { NmlabError } from '../../shared/errors';
import { loadFeatureSet } from '../../core/tuning/load';
import { resolveTuneParams } from '../../core/tuning/params';
import { checkTuneFitData, runTuneFit, type TuneFitData } from '../../core/jobs/kinds/tune';
import { oneFitStudySpec, readOneFitRun } from '../../core/experiments/oneFit';
import { finalReport, runStudy } from './run';

/** One flag per leaf of TuneParams: `terms.mse` is `--terms-mse`. */
interface TuneFlag extends TuneParamField {
  flag: string;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const FLAGS: TuneFlag[] = tuneParamFields().map((f) => ({ ...f, flag: f.path.map(String).map(kebab).join('-') }));

/** What a flag takes: choices, a number, true/false; "|null" where null is allowed. */
function takes(f: TuneParamField): string {
  const base = f.kind === 'choice' ? f.choices!.join('|') : f.kind === 'boolean' ? 'true|false' : f.kind;
  return f.nullable ? `${base}|null` : base;
}

function parseValue(f: Pick<TuneParamField, 'schema' | 'kind' | 'nullable'>, raw: string, flag: string): unknown {
  let v: unknown = raw;
  if (f.nullable && raw === 'null') v = null;
  else if (f.kind === 'number' || f.kind === 'integer') {
    v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${flag} must be a number, got "${raw}"`);
  } else if (f.kind === 'boolean') {
    if (raw !== 'true' && raw !== 'false') throw new UsageError(`--${flag} must be true or false, got "${raw}"`);
    v = raw === 'true';
  }
  const r = f.schema.safeParse(v);
  if (!r.success) throw new UsageError(`--${flag}: ${r.error.issues[0]?.message ?? 'invalid'} (got "${raw}")`);
  return r.data;
}

function defaultsText(f: TuneFlag): string {
  const [key, sub] = f.path;
  if (key === 'preset') return 'default "paper"';
  const seen = new Map<string, string[]>();
  for (const [m, p] of [['lp', 'paper'], ['mlp', 'paper'], ['nmtune', 'paper'], ['nmtune', 'reference']] as const) {
    const d = tuneDefaults(m, p)[key] as unknown;
    const v = JSON.stringify(sub ? (d as Record<string, unknown>)[sub] : d);
    seen.set(v, [...(seen.get(v) ?? []), p === 'reference' ? `${m} reference` : m]);
  }
  if (seen.size === 1) return `default ${[...seen.keys()][0]}`;
  return `default ${[...seen].map(([v, who]) => `${v} (${who.join(', ')})`).join(', ')}`;
}

const USAGE = `Usage: nmlab tune --train-features A.npy --train-labels a.npy --test-features B.npy --test-labels b.npy
                  --method lp|mlp|nmtune [--target NAME:F.npy:L.npy ...] [options]

Trains on the training features and reports, on the test set and every target, accuracy,
macro-F1 (0–1) and the SVE and LSVR of the tuned features Z (headline values after the
reference preprocessing: rows L2-normalised, then centred; raw values beside them).

  --method M           lp (linear head), mlp (MLP D→4D→D + head) or nmtune (MLP + eq. 4–6 terms)
  --target NAME:F:L    an OOD target (features and labels .npy); repeat for several
  --project DIR        run the fit as a one-job study on DIR's queue (DIR must hold nmlab.json):
                       its run in DIR/runs/<id>/, the study in Experiments and
                       \`nmlab experiment compare ID\`; files from outside DIR are copied to
                       DIR/embeddings/ (once per content). Target names: letters, digits, . - _
                       --downstream-noise-eta > 0 is the study's η (its semantics and seed the
                       study's etaNoise): job key and compare column \`<method>-eta<η %>\`
  --json               print one JSON object: { runId, runDir, studyId, result } (result:
                       TuneRunResult; the ids and runDir are null without --project)

Tuning parameters (src/shared/contract/tuning.ts; presets: paper = eq. 4–7 with λ = 0.01,
reference = the authors' nml_tune.py):
${FLAGS.map((f) => `  --${f.flag} <${takes(f)}>\n      ${f.description}; ${defaultsText(f)}`).join('\n')}

Without --json, progress goes to stderr and a summary to stdout. Ctrl-C stops after the
current step; with --project the study's job is then cancelled (\`nmlab experiment resume ID\`
runs it again).
`;

/** The overrides the flags give (method included). */
export function overridesFromFlags(args: ParsedCommandArgs): TuneOverrides & { method: TuneParams['method'] } {
  const choice = { kind: 'choice', nullable: false } as const;
  const method = parseValue({ ...choice, schema: TuneParams.shape.method }, requireOpt(args, 'method'), 'method') as TuneParams['method'];
  const out: Record<string, unknown> = { method };
  const preset = stringOpt(args, 'preset');
  const defaults = tuneDefaults(method, preset === undefined ? 'paper' : (parseValue({ ...choice, schema: TuneParams.shape.preset }, preset, 'preset') as TuneParams['preset']));
  for (const f of FLAGS) {
    const raw = stringOpt(args, f.flag);
    if (raw === undefined) continue;
    const v = parseValue(f, raw, f.flag);
    const [key, sub] = f.path;
    if (sub === undefined) out[key] = v;
    else out[key] = { ...((out[key] as Record<string, unknown> | undefined) ?? (defaults[key] as Record<string, unknown>)), [sub]: v };
  }
  return out as TuneOverrides & { method: TuneParams['method'] };
}

/** The files the flags name, as absolute paths. */
interface FitInputs {
  trainFeatures: string;
  trainLabels: string;
  testFeatures: string;
  testLabels: string;
  targets: Array<{ name: string; features: string; labels: string }>;
}

function parseTarget(spec: string): { name: string; features: string; labels: string } {
  const parts = spec.split(':');
  if (parts.length !== 3 || parts.some((p) => p === '')) throw new UsageError(`--target must be NAME:FEATURES.npy:LABELS.npy, got "${spec}"`);
  return { name: parts[0], features: resolve(parts[1]), labels: resolve(parts[2]) };
}

/** What {@link fitAsStudy} reports while the study runs. */
interface StudyFitHooks {
  signal: AbortSignal;
  /** Each epoch's point (`meanLoss`, `seconds`, the test set's `accuracy`), live from the worker. */
  onEpoch?: (epoch: number, values: Record<string, number>) => void;
  onWarning: (line: string) => void;
  onStudy?: (id: string) => void;
}

/**
 * `--project`: the fit as a one-job study (src/core/experiments/oneFit.ts) run on the
 * project's queue as `nmlab run` runs a spec; the result is the one its tune job wrote.
 * Inputs are checked first, so a bad file leaves nothing in the project.
 */
async function fitAsStudy(projectDir: string, overrides: TuneOverrides & { method: TuneParams['method'] }, inputs: FitInputs, data: TuneFitData, hooks: StudyFitHooks) {
  checkTuneFitData(overrides.method, data);
  const spec = await oneFitStudySpec(projectDir, overrides, {
    train: { features: inputs.trainFeatures, labels: inputs.trainLabels },
    test: { features: inputs.testFeatures, labels: inputs.testLabels },
    targets: inputs.targets,
  });
  const d = (await runStudy(projectDir, spec, {
    signal: hooks.signal,
    onCreated: (created) => hooks.onStudy?.(created.summary.id),
    onEvent: (e) => {
      if (e.type === 'live') for (const p of e.points) if (p.series === 'epoch') hooks.onEpoch?.(p.step, p.values);
    },
  }))!;
  const id = d.summary.id;
  const job = d.jobs.find((j) => j.stage === 'tune')!;
  if (job.state !== 'succeeded') {
    const why = job.error ?? `the job was ${job.state}`;
    if (hooks.signal.aborted) throw new NmlabError('CANCELLED', `${why}; study ${id}: \`nmlab experiment resume ${id} --project ${projectDir}\` runs it again`);
    throw new NmlabError('JOB_FAILED', `${why} (study ${id}${job.runId ? `; log in runs/${job.runId}/log.txt` : ''})`);
  }
  const run = await readOneFitRun(projectDir, d);
  for (const w of run.warnings) hooks.onWarning(w);
  const { code, text } = finalReport(d, projectDir);
  // The fit is done; a comparison that failed is said, not hidden.
  if (code !== 0) hooks.onWarning(text.trimEnd());
  return { runId: run.runId, runDir: run.runDir, studyId: id, result: run.result };
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'LP, MLP or NMTune on feature files; accuracy, macro-F1, SVE/LSVR of Z',
  usage: USAGE,
  options: {
    'train-features': { type: 'string' },
    'train-labels': { type: 'string' },
    'test-features': { type: 'string' },
    'test-labels': { type: 'string' },
    target: { type: 'string', multiple: true },
    method: { type: 'string' },
    ...Object.fromEntries(FLAGS.map((f) => [f.flag, { type: 'string' as const }])),
    project: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const overrides = overridesFromFlags(args);
    const inputs = {
      trainFeatures: resolve(requireOpt(args, 'train-features')),
      trainLabels: resolve(requireOpt(args, 'train-labels')),
      testFeatures: resolve(requireOpt(args, 'test-features')),
      testLabels: resolve(requireOpt(args, 'test-labels')),
      targets: ((args.values.target as string[] | undefined) ?? []).map(parseTarget),
    };
    const json = args.values.json === true;
    const projectDir = stringOpt(args, 'project');
    const [train, test, ...targetSets] = await Promise.all([
      loadFeatureSet(inputs.trainFeatures, inputs.trainLabels),
      loadFeatureSet(inputs.testFeatures, inputs.testLabels),
      ...inputs.targets.map((t) => loadFeatureSet(t.features, t.labels)),
    ]);
    const data = { train, test, targets: inputs.targets.map((t, i) => ({ name: t.name, set: targetSets[i] })) };
    const ctl = new AbortController();
    const onSigint = () => ctl.abort();
    process.once('SIGINT', onSigint);
    try {
      const epochLine = (epoch: number, epochs: number, v: { meanLoss?: number; accuracy?: number; seconds?: number }) =>
        `epoch ${epoch}/${epochs}  loss ${(v.meanLoss ?? NaN).toFixed(4)}${v.accuracy !== undefined && v.accuracy !== null ? `  test accuracy ${(100 * v.accuracy).toFixed(2)} %` : ''}  ${(v.seconds ?? NaN).toFixed(2)} s\n`;
      let out: { runId: string | null; runDir: string | null; studyId: string | null; result: TuneRunResult };
      if (projectDir) {
        const { epochs } = resolveTuneParams(overrides, 'nmlab tune');
        out = await fitAsStudy(projectDir, overrides, inputs, data, {
          signal: ctl.signal,
          onEpoch: json ? undefined : (epoch, values) => io.err(epochLine(epoch, epochs, values)),
          onWarning: (w) => io.err(`${w}\n`),
          onStudy: json ? undefined : (id) => io.err(`study ${id}: one tune job on the project's queue\n`),
        });
      } else {
        const fit = await runTuneFit(overrides, data, {
          signal: ctl.signal,
          // Warnings (e.g. test classes the training labels never use) always reach stderr.
          onLog: (line) => {
            if (line.startsWith('warning: ') || (!json && line.startsWith('tune '))) io.err(`${line}\n`);
          },
          onEpoch: (e) => {
            if (!json) io.err(epochLine(e.epoch, e.epochs, { meanLoss: e.meanLoss, seconds: e.seconds, ...(e.accuracy !== null ? { accuracy: e.accuracy } : {}) }));
          },
        });
        out = { ...fit, studyId: null };
      }
      const { runId, runDir, studyId, result } = out;
      if (json) printJson(io, { runId, runDir, studyId, result });
      else {
        const t = result.test!;
        io.out(`${result.method}${result.method !== 'lp' ? ` (${result.preset})` : ''}: accuracy ${(t.accuracy * 100).toFixed(2)} %, macro-F1 ${t.macroF1.toFixed(4)}\n`);
        io.out(`  Z: SVE ${t.sve.toFixed(4)}, LSVR ${t.lsvr.toFixed(4)} (raw ${t.sveRaw?.toFixed(4)}, ${t.lsvrRaw?.toFixed(4)}); ${result.engine} on ${result.backend}, ${result.seconds.toFixed(1)} s\n`);
        for (const x of result.targets) io.out(`  ${x.name}: accuracy ${(x.accuracy * 100).toFixed(2)} %, LSVR ${x.lsvr.toFixed(4)}\n`);
        if (result.downstreamNoise.eta > 0) io.out(`  downstream noise η ${result.downstreamNoise.eta} (${result.downstreamNoise.semantics}): ${(100 * result.downstreamNoise.realisedFlipRate).toFixed(2)} % of labels changed\n`);
        if (runId) io.out(`  run ${runId} in ${runDir}\n`);
        if (studyId) io.out(`  study ${studyId}: \`nmlab experiment compare ${studyId} --project ${projectDir}\`\n`);
      }
      return 0;
    } catch (err) {
      if (err instanceof Error && 'code' in err && err.code === 'CANCELLED') {
        io.err(`${err.message}\n`);
        return 130;
      }
      throw err;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
