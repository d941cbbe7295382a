/**
 * `nmlab spectrum --features F.npy|F.csv [--preprocess none|reference] [--top-k K] [--json]`:
 * all singular values of a feature matrix with SVE, LSVR, σ₁ share and effective rank
 * (paper §5, Eqs. 2–3; DESIGN §4). See src/core/spectrum/spectrum.ts for the method.
 */
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type Command } from '../command';
import { resolve } from 'node:path';
import { spectrumOfFile, SPECTRUM_PREPROCESS, type SpectrumPreprocess } from '../../core/spectrum';
import { RunStore, type Run } from '../../core/runs/store';

const USAGE = `Usage: nmlab spectrum --features F.npy|F.csv [--preprocess none|reference] [--top-k K] [--json]

Computes every singular value of the M×D feature matrix in float64, through the smaller Gram
matrix (FᵀF or FFᵀ, accumulated over row chunks on onnxruntime, or in JS where onnxruntime
cannot load), then SVE = −Σ pᵢ log pᵢ (pᵢ = σᵢ/Σσ, natural log), LSVR = −log(σ₁/Σσ), the σ₁
share and the effective rank exp(SVE) (Roy & Vetterli, 2007).

Options:
  --features FILE      .npy (2-D, float32/float64/int, C order) or .csv (numeric columns)
  --label-column COL   CSV only: label column to drop, by header name or 0-based index
                       (negative counts from the end)
  --preprocess P       none (default) or reference: each row L2-normalised, then centred by
                       its own mean, as the paper's reference code does
  --top-k K            print only the K largest singular values (SVE/LSVR still use all)
  --gram G             auto (default), ort or js: where the Gram matrix is computed
  --project DIR        also save the result as a run in DIR/runs/<id>/ (DIR holds nmlab.json)
  --json               one JSON object: singularValues (descending), sve, lsvr, sigma1Share,
                       effectiveRank, preprocess, m, d, method, gram, numericalRank, seconds, …

Singular values under √((M+D)·2⁻⁵²)·σ₁ cannot be resolved through a Gram matrix and are
reported as 0 (numericalRank counts the others).
`;

export const spectrumCommand: Command = {
  name: 'spectrum',
  summary: 'singular values, SVE and LSVR of a feature matrix',
  usage: USAGE,
  options: {
    features: { type: 'string' },
    'label-column': { type: 'string' },
    preprocess: { type: 'string' },
    'top-k': { type: 'string' },
    gram: { type: 'string' },
    project: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const file = requireOpt(args, 'features');
    const preprocess = (stringOpt(args, 'preprocess') ?? 'none') as SpectrumPreprocess;
    if (!SPECTRUM_PREPROCESS.includes(preprocess)) throw new UsageError(`--preprocess must be one of ${SPECTRUM_PREPROCESS.join(', ')}, got "${preprocess}"`);
    const topK = numberOpt(args, 'top-k');
    if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) throw new UsageError(`--top-k must be a positive integer, got ${topK}`);
    const gram = stringOpt(args, 'gram') ?? 'auto';
    if (gram !== 'auto' && gram !== 'ort' && gram !== 'js') throw new UsageError(`--gram must be auto, ort or js, got "${gram}"`);
    const lc = stringOpt(args, 'label-column');
    const csvLabelColumn = lc === undefined ? undefined : /^-?\d+$/.test(lc) ? Number(lc) : lc;
    if (csvLabelColumn !== undefined && !/\.csv$/i.test(file)) throw new UsageError('--label-column applies to .csv features only');

    const projectDir = stringOpt(args, 'project');
    let run: Run | null = null;
    if (projectDir) {
      run = await new RunStore(projectDir).create('spectrum', { features: resolve(file), preprocess, topK: topK ?? null, gram, labelColumn: csvLabelColumn ?? null });
      if (args.values.json !== true) io.err(`run ${run.id} in ${resolve(projectDir)}/runs\n`);
    }
    let r;
    try {
      r = await spectrumOfFile(file, { preprocess, topK, gram, csvLabelColumn });
    } catch (err) {
      if (run) await run.fail(err);
      throw err;
    }
    const result = { features: file, ...r, ...(run ? { runId: run.id, runDir: run.dir } : {}) };
    if (run) await run.succeed(result);
    if (args.values.json === true) {
      printJson(io, result);
      return 0;
    }
    const n = Math.min(r.m, r.d);
    const shown = r.singularValues.slice(0, Math.min(10, r.singularValues.length));
    io.out(`${file}: ${r.m}×${r.d} features, preprocess ${r.preprocess}\n`);
    io.out(`  SVE             ${r.sve.toFixed(6)}  (max ln ${n} = ${Math.log(n).toFixed(6)})\n`);
    io.out(`  LSVR            ${r.lsvr.toFixed(6)}\n`);
    io.out(`  σ1 share        ${r.sigma1Share.toFixed(6)}\n`);
    io.out(`  effective rank  ${r.effectiveRank.toFixed(2)} of ${n} (numerical rank ${r.numericalRank})\n`);
    io.out(`  σ1..σ${shown.length}         ${shown.map((s) => s.toPrecision(6)).join(' ')}\n`);
    io.out(`  method          ${r.method} (${r.gram}), ${r.seconds.toFixed(3)} s\n`);
    if (r.fallbackReason) io.err(`note: ${r.fallbackReason}\n`);
    return 0;
  },
};
