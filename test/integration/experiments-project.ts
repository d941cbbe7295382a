/**
 * A small, seeded features-only project for the experiment tests (integration and e2e):
 * `features/<backbone>/<dataset>/<split>.npy` + `.labels.npy` in the layout the builder scans,
 * one backbone per noise ratio γ. Features are Gaussian class clusters; a larger γ shrinks the
 * class signal and adds a shared nuisance direction (so accuracy falls with γ, as pre-training
 * noise does in the paper), and the OOD target domains are a shifted and a sign-flipped copy.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNpy } from '../../src/core/arrays/npy';
import { ProjectService } from '../../src/core/projects/service';

/** mulberry32: a tiny seeded PRNG (deterministic fixtures without Python). */
function rng(seed: number): { uniform: () => number; normal: () => number } {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

export interface FeatureProjectOptions {
  backbones?: Array<{ id: string; gamma: number }>;
  dataset?: string;
  classes?: number;
  dim?: number;
  trainRows?: number;
  testRows?: number;
  /** OOD target domains written besides train/test. */
  targets?: Array<'shift' | 'flip'>;
  seed?: number;
}

/** Create the project (nmlab.json via the project service) and its feature files. */
export async function makeFeatureProject(dir: string, home: string, opts: FeatureProjectOptions = {}): Promise<void> {
  const backbones = opts.backbones ?? [{ id: 'g0', gamma: 0 }, { id: 'g20', gamma: 0.2 }];
  const dataset = opts.dataset ?? 'synth';
  const C = opts.classes ?? 4;
  const D = opts.dim ?? 16;
  const seed = opts.seed ?? 7;
  await new ProjectService({ home }).create(dir, 'experiment test project');
  const r = rng(seed);
  const means = Array.from({ length: C }, () => Array.from({ length: D }, () => 1.6 * r.normal()));
  const nuisance = Array.from({ length: D }, () => r.normal());
  const shift = Array.from({ length: D }, () => 1.2 * r.normal());
  const splits: Record<string, number> = { train: opts.trainRows ?? 240, test: opts.testRows ?? 120 };
  for (const t of opts.targets ?? ['shift', 'flip']) splits[t] = opts.testRows ?? 120;
  // The same samples (labels and noise draws) for every backbone, so only γ differs.
  const samples: Record<string, { y: Int32Array; eps: Float64Array; s: Float64Array }> = {};
  for (const [name, rows] of Object.entries(splits)) {
    const y = Int32Array.from({ length: rows }, (_, i) => i % C);
    const eps = Float64Array.from({ length: rows * D }, () => r.normal());
    const s = Float64Array.from({ length: rows }, () => r.normal());
    samples[name] = { y, eps, s };
  }
  for (const b of backbones) {
    const bdir = join(dir, 'features', b.id);
    await mkdir(join(bdir, dataset), { recursive: true });
    await writeFile(join(bdir, 'meta.json'), JSON.stringify({ gamma: b.gamma }) + '\n');
    for (const [name, { y, eps, s }] of Object.entries(samples)) {
      const rows = y.length;
      const x = new Float32Array(rows * D);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < D; j++) {
          let v = (1 - 1.5 * b.gamma) * means[y[i]][j] + eps[i * D + j] + 4 * b.gamma * s[i] * nuisance[j];
          if (name === 'shift') v += shift[j];
          if (name === 'flip' && j % 2 === 1) v = -v;
          x[i * D + j] = v;
        }
      }
      await writeNpy(join(bdir, dataset, `${name}.npy`), { dtype: 'float32', shape: [rows, D], data: x });
      await writeNpy(join(bdir, dataset, `${name}.labels.npy`), { dtype: 'int32', shape: [rows], data: y });
    }
  }
}
