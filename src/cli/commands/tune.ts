/**
 * `nmlab tune`: linear probing, MLP tuning or black-box NMTune (paper §6.1, eq. 4–7) on feature
 * files, through runTuneFit (src/core/jobs/kinds/tune.ts): accuracy, macro-F1 and the spectrum
 * of the tuned features Z on the test set and every `--target`. Every tuning parameter is a
 * flag derived from the `TuneParams` schema (src/shared/contract/tuning.ts): `terms.mse`
 * becomes `--terms-mse`, `weightDecay` `--weight-decay`. With --project the run is saved in
 * the project's runs/ folder in the `TuneRunResult` shape.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { UsageError, printJson, requireOpt, stringOpt, type Command, type ParsedCommandArgs } from '../command';
import { TuneParams, type TuneOverrides } from '../../shared/contract/tuning';
import { loadFeatureSet } from '../../core/tuning/load';
import { tuneDefaults } from '../../core/tuning/params';
import { runTuneFit } from '../../core/jobs/kinds/tune';

type Field = z.ZodType;

/** One flag per leaf of TuneParams (method is required and handled apart). */
interface TuneFlag {
  flag: string;
  key: keyof TuneParams;
  sub: string | null;
  schema: Field;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function leaves(): TuneFlag[] {
  const out: TuneFlag[] = [];
  for (const [key, schema] of Object.entries(TuneParams.shape) as Array<[keyof TuneParams, Field]>) {
    if (key === 'method') continue;
    if (schema instanceof z.ZodObject)
      for (const [sub, s] of Object.entries(schema.shape as Record<string, Field>)) out.push({ flag: `${kebab(key)}-${kebab(sub)}`, key, sub, schema: s });
    else out.push({ flag: kebab(key), key, sub: null, schema });
  }
  return out;
}

const FLAGS = leaves();

/** What a flag takes, from its schema: choices, a number, true/false; "|null" where null is allowed. */
function takes(s: Field): string {
  if (s instanceof z.ZodNullable) return `${takes(s.unwrap() as Field)}|null`;
  if (s instanceof z.ZodEnum) return (s.options as string[]).join('|');
  if (s instanceof z.ZodBoolean) return 'true|false';
  if (s instanceof z.ZodNumber) return s.format === 'safeint' || s.isInt ? 'integer' : 'number';
  return 'value';
}

function parseValue(s: Field, raw: string, flag: string): unknown {
  if (s instanceof z.ZodNullable && raw === 'null') return null;
  const inner = s instanceof z.ZodNullable ? (s.unwrap() as Field) : s;
  let v: unknown = raw;
  if (inner instanceof z.ZodNumber) {
    v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${flag} must be a number, got "${raw}"`);
  } else if (inner instanceof z.ZodBoolean) {
    if (raw !== 'true' && raw !== 'false') throw new UsageError(`--${flag} must be true or false, got "${raw}"`);
    v = raw === 'true';
  }
  const r = s.safeParse(v);
  if (!r.success) throw new UsageError(`--${flag}: ${r.error.issues[0]?.message ?? 'invalid'} (got "${raw}")`);
  return r.data;
}

function defaultsText(f: TuneFlag): string {
  if (f.key === 'preset') return 'default "paper"';
  const seen = new Map<string, string[]>();
  for (const [m, p] of [['lp', 'paper'], ['mlp', 'paper'], ['nmtune', 'paper'], ['nmtune', 'reference']] as const) {
    const d = tuneDefaults(m, p)[f.key] as unknown;
    const v = JSON.stringify(f.sub ? (d as Record<string, unknown>)[f.sub] : d);
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
  --project DIR        save the run in DIR/runs/<id>/ (DIR must hold nmlab.json)
  --json               print one JSON object: { runId, runDir, result } (result: TuneRunResult)

Tuning parameters (src/shared/contract/tuning.ts; presets: paper = eq. 4–7 with λ = 0.01,
reference = the authors' nml_tune.py):
${FLAGS.map((f) => `  --${f.flag} <${takes(f.schema)}>\n      ${f.schema.description ?? ''}; ${defaultsText(f)}`).join('\n')}

Without --json, progress goes to stderr and a summary to stdout. Ctrl-C stops after the
current step; the run is then saved as cancelled.
`;

/** The overrides the flags give (method included). */
export function overridesFromFlags(args: ParsedCommandArgs): TuneOverrides & { method: TuneParams['method'] } {
  const method = parseValue(TuneParams.shape.method, requireOpt(args, 'method'), 'method') as TuneParams['method'];
  const out: Record<string, unknown> = { method };
  const preset = stringOpt(args, 'preset');
  const defaults = tuneDefaults(method, preset === undefined ? 'paper' : (parseValue(TuneParams.shape.preset, preset, 'preset') as TuneParams['preset']));
  for (const f of FLAGS) {
    const raw = stringOpt(args, f.flag);
    if (raw === undefined) continue;
    const v = parseValue(f.schema, raw, f.flag);
    if (f.sub === null) out[f.key] = v;
    else out[f.key] = { ...((out[f.key] as Record<string, unknown> | undefined) ?? (defaults[f.key] as Record<string, unknown>)), [f.sub]: v };
  }
  return out as TuneOverrides & { method: TuneParams['method'] };
}

function parseTarget(spec: string): { name: string; features: string; labels: string } {
  const parts = spec.split(':');
  if (parts.length !== 3 || parts.some((p) => p === '')) throw new UsageError(`--target must be NAME:FEATURES.npy:LABELS.npy, got "${spec}"`);
  return { name: parts[0], features: resolve(parts[1]), labels: resolve(parts[2]) };
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
    const targets = inputs.targets.map((t, i) => ({ name: t.name, set: targetSets[i] }));
    const ctl = new AbortController();
    const onSigint = () => ctl.abort();
    process.once('SIGINT', onSigint);
    try {
      const { runId, runDir, result } = await runTuneFit(overrides, { train, test, targets }, {
        run: projectDir ? { projectDir, config: { inputs } } : null,
        signal: ctl.signal,
        onLog: (line) => {
          if (!json && line.startsWith('tune ')) io.err(`${line}\n`);
        },
        onEpoch: (e) => {
          if (!json) io.err(`epoch ${e.epoch}/${e.epochs}  loss ${e.meanLoss.toFixed(4)}${e.accuracy !== null ? `  test accuracy ${(100 * e.accuracy).toFixed(2)} %` : ''}  ${e.seconds.toFixed(2)} s\n`);
        },
      });
      if (json) printJson(io, { runId, runDir, result });
      else {
        const t = result.test!;
        io.out(`${result.method}${result.method !== 'lp' ? ` (${result.preset})` : ''}: accuracy ${(t.accuracy * 100).toFixed(2)} %, macro-F1 ${t.macroF1.toFixed(4)}\n`);
        io.out(`  Z: SVE ${t.sve.toFixed(4)}, LSVR ${t.lsvr.toFixed(4)} (raw ${t.sveRaw?.toFixed(4)}, ${t.lsvrRaw?.toFixed(4)}); ${result.engine} on ${result.backend}, ${result.seconds.toFixed(1)} s\n`);
        for (const x of result.targets) io.out(`  ${x.name}: accuracy ${(x.accuracy * 100).toFixed(2)} %, LSVR ${x.lsvr.toFixed(4)}\n`);
        if (result.downstreamNoise.eta > 0) io.out(`  downstream noise η ${result.downstreamNoise.eta} (${result.downstreamNoise.semantics}): ${(100 * result.downstreamNoise.realisedFlipRate).toFixed(2)} % of labels changed\n`);
        if (runId) io.out(`  run ${runId} in ${runDir}\n`);
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
