/**
 * `nmlab noise --labels y.npy --type symmetric|asymmetric|pairswap --ratio R --seed S --out y2.npy`:
 * injects seeded label noise (DESIGN §4) and writes the noisy labels atomically, in the input's
 * dtype. Prints the flipped count and the realised transition matrix.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { UsageError, numberOpt, printJson, requireOpt, stringOpt, type CliIO, type Command } from '../command';
import { readNpy, writeNpy, type NpyArray } from '../../core/arrays/npy';
import { MAX_CLASSES, classCountOf, labelVector } from '../../core/arrays/validate';
import { asymmetricNoise, pairSwapLabels, symmetricNoise, type NoiseResult } from '../../core/noise';
import { NmlabError } from '../../shared/errors';

const USAGE = `Usage: nmlab noise --labels y.npy --type symmetric|asymmetric|pairswap --ratio R --seed S --out y2.npy
                   [--classes 0,1,2] [--map 0:1,1:0] [--num-classes C] [--flipped-out idx.npy] [--json]

Injects label noise reproducibly (xoshiro128**, seeded):
  symmetric   exactly round(R·N) samples each get a uniformly drawn different class
  asymmetric  only samples of --classes (or of the --map sources) are eligible; exactly
              round(R·N_eligible) flip, to --map's target or to another class of --classes
  pairswap    round(R·N/2) disjoint pairs of samples swap labels (captions, for paired data);
              --flipped-out then holds the swapped samples

Options:
  --labels FILE       1-D .npy of class indices (int32/int64/uint8, or integral floats)
  --out FILE          noisy labels, same dtype and shape as --labels (written atomically)
  --ratio R           0..1
  --seed S            integer
  --num-classes C     default: max label + 1
  --classes LIST      comma-separated class indices (asymmetric)
  --map LIST          comma-separated from:to pairs (asymmetric)
  --flipped-out FILE  write the flipped indices as int64 .npy; without it they are in the JSON
  --json              print one JSON object (default prints a summary)
`;

function parseIntList(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const out = parts.map(Number);
  if (out.length === 0 || out.some((v) => !Number.isInteger(v) || v < 0)) throw new UsageError(`--${flag} must be comma-separated class indices, got "${text}"`);
  return out;
}

function parseMap(text: string): Record<number, number> {
  const map: Record<number, number> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^(\d+):(\d+)$/.exec(part);
    if (!m) throw new UsageError(`--map must be comma-separated from:to pairs like 0:1,1:0, got "${part}"`);
    if (map[Number(m[1])] !== undefined) throw new UsageError(`--map gives class ${m[1]} twice`);
    map[Number(m[1])] = Number(m[2]);
  }
  return map;
}

/** The noisy labels in the dtype (and shape) of the input file. */
function sameDtype(input: NpyArray, labels: Int32Array): NpyArray {
  const shape = input.shape;
  switch (input.dtype) {
    case 'int64':
      return { dtype: 'int64', shape, data: BigInt64Array.from(labels, (v) => BigInt(v)) };
    case 'int32':
      return { dtype: 'int32', shape, data: labels };
    case 'uint8':
      return { dtype: 'uint8', shape, data: Uint8Array.from(labels) };
    case 'float32':
      return { dtype: 'float32', shape, data: Float32Array.from(labels) };
    case 'float64':
      return { dtype: 'float64', shape, data: Float64Array.from(labels) };
  }
}

export const noiseCommand: Command = {
  name: 'noise',
  summary: 'inject seeded label noise (symmetric, asymmetric, pair swap)',
  usage: USAGE,
  options: {
    labels: { type: 'string' },
    type: { type: 'string' },
    ratio: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    classes: { type: 'string' },
    map: { type: 'string' },
    'num-classes': { type: 'string' },
    'flipped-out': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const labelsFile = requireOpt(args, 'labels');
    const outFile = requireOpt(args, 'out');
    const type = requireOpt(args, 'type');
    if (type !== 'symmetric' && type !== 'asymmetric' && type !== 'pairswap') throw new UsageError(`--type must be symmetric, asymmetric or pairswap, got "${type}"`);
    const ratio = numberOpt(args, 'ratio');
    if (ratio === undefined) throw new UsageError('--ratio is required');
    if (ratio < 0 || ratio > 1) throw new UsageError(`--ratio must be in [0, 1], got ${ratio}`);
    const seed = numberOpt(args, 'seed');
    if (seed === undefined) throw new UsageError('--seed is required');
    if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got ${seed}`);
    const numClasses = numberOpt(args, 'num-classes');
    if (numClasses !== undefined && (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > MAX_CLASSES)) {
      throw new UsageError(`--num-classes must be an integer from 2 to ${MAX_CLASSES}, got ${numClasses}`);
    }
    const classesText = stringOpt(args, 'classes');
    const mapText = stringOpt(args, 'map');
    if (type !== 'asymmetric' && (classesText || mapText)) throw new UsageError('--classes and --map apply to --type asymmetric only');
    const flippedOut = stringOpt(args, 'flipped-out');
    if (outFile === labelsFile) throw new UsageError('--out must differ from --labels (the clean labels are kept)');

    const input = await readNpy(labelsFile);
    const labels = labelVector(input, labelsFile, numClasses);
    // Without --num-classes, K comes from the labels and must be dense (bounded by the rows).
    const opts = { ratio, seed, numClasses: numClasses ?? classCountOf(labels, labelsFile) };
    let r: NoiseResult;
    try {
      if (type === 'symmetric') r = symmetricNoise(labels, opts);
      else if (type === 'pairswap') r = pairSwapLabels(labels, opts);
      else r = asymmetricNoise(labels, { ...opts, classes: classesText ? parseIntList(classesText, 'classes') : undefined, map: mapText ? parseMap(mapText) : undefined });
    } catch (err) {
      if (err instanceof NmlabError && err.code === 'BAD_REQUEST') throw new NmlabError('BAD_REQUEST', `${labelsFile}: ${err.message}`);
      throw err;
    }
    const outExisted = existsSync(outFile);
    await writeNpy(outFile, sameDtype(input, r.labels));
    if (flippedOut) {
      try {
        await writeNpy(flippedOut, { dtype: 'int64', shape: [r.flippedIndices.length], data: BigInt64Array.from(r.flippedIndices, (v) => BigInt(v)) });
      } catch (err) {
        // Both files or neither: noisy labels without their flip record are a half-written result.
        if (!outExisted) await rm(outFile, { force: true });
        throw err;
      }
    }

    const report = {
      labels: labelsFile,
      out: outFile,
      type: r.type,
      ratio: r.ratio,
      seed: r.seed,
      prng: r.prng,
      n: labels.length,
      numClasses: r.numClasses,
      ...(r.classes ? { classes: r.classes } : {}),
      flipped: r.flippedIndices.length,
      flippedIndices: flippedOut ?? Array.from(r.flippedIndices),
      transitionCounts: r.transitionCounts,
      transitionMatrix: r.transitionMatrix,
    };
    if (args.values.json === true) printJson(io, report);
    else printSummary(io, report.flipped, labels.length, r, outFile);
    return 0;
  },
};

function printSummary(io: CliIO, flipped: number, n: number, r: NoiseResult, out: string): void {
  io.out(`${r.type} noise, ratio ${r.ratio}, seed ${r.seed}: ${flipped} of ${n} samples changed; wrote ${out}\n`);
  if (r.numClasses <= 20) {
    io.out('realised transition matrix (rows: original class, columns: new class):\n');
    for (let i = 0; i < r.numClasses; i++) io.out(`  ${String(i).padStart(3)}  ${r.transitionMatrix[i].map((v) => v.toFixed(3)).join(' ')}\n`);
  }
}
