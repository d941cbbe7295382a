/**
 * Step time of MLP tuning and NMTune (batch 128, D = 512, hidden 2048, 10 classes; DESIGN §4
 * shapes) for NMLab's tuner against PyTorch on the CPU (Debian's python3-torch, 1 thread and
 * its default thread count), all measured in the same run. A "step" is what one optimisation
 * step costs in each: forward, loss terms, backward, AdamW update (NMLab: plus gathering the
 * batch and reading the loss terms back, as its training loop does).
 *
 *   npx tsx bench/tune.bench.ts            (BENCH_STEPS=n to change the number of timed steps)
 *
 * NMLab is timed through FeatureTuner.fit itself, from its per-step events; the first steps
 * (kernel set-up, XNNPACK operator creation) are excluded.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../src/core/tf/backend';
import { makeTuner, type TuneMethod } from '../src/core/tuning/tuner';
import type { FeatureSet } from '../src/core/tuning/data';
import { Rng } from '../src/core/tuning/rng';

const B = 128;
const D = 512;
const C = 10;
const WARMUP = 3;
const STEPS = Number(process.env.BENCH_STEPS ?? 12);

const TORCH = String.raw`
import sys, time, json, torch, torch.nn as nn, torch.nn.functional as F
threads = int(sys.argv[1]); steps = int(sys.argv[2]); warm = int(sys.argv[3])
if threads > 0: torch.set_num_threads(threads)
torch.manual_seed(0)
B, D, C = 128, 512, 10
x = torch.randn(B * (steps + warm), D); y = torch.randint(0, C, (B * (steps + warm),))
def run(nmtune):
    mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.BatchNorm1d(4 * D), nn.ReLU(), nn.Linear(4 * D, D))
    head = nn.Linear(D, C)
    opt = torch.optim.AdamW(list(mlp.parameters()) + list(head.parameters()), lr=1e-3, weight_decay=1e-4)
    times = []
    for i in range(steps + warm):
        t0 = time.perf_counter()
        f = x[i * B:(i + 1) * B]; t = y[i * B:(i + 1) * B]
        z = mlp(f); loss = F.cross_entropy(head(z), t)
        if nmtune:
            mse = ((F.normalize(f, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean()
            zc = z - z.mean(0, keepdim=True); cm = zc.t() @ zc / (B - 1)
            cov = ((cm ** 2).sum() - (torch.diagonal(cm) ** 2).sum()) / D
            s = torch.linalg.svdvals(z); svd = -s[0] / s.sum()
            loss = loss + 0.01 * (mse + cov + svd)
        opt.zero_grad(); loss.backward(); opt.step()
        loss.item()
        times.append(time.perf_counter() - t0)
    return sorted(times[warm:])[len(times[warm:]) // 2] * 1000
print(json.dumps({"threads": torch.get_num_threads(), "mlp": run(False), "nmtune": run(True), "torch": torch.__version__}))
`;

interface TorchResult {
  threads: number;
  mlp: number;
  nmtune: number;
  torch: string;
}

function torchStep(threads: number): TorchResult | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return null;
  const r = spawnSync(py, ['-c', TORCH, String(threads), String(STEPS), String(WARMUP)], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.log(`PyTorch not measured: ${r.stderr.trim().split('\n').pop()}`);
    return null;
  }
  return JSON.parse(r.stdout) as TorchResult;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

async function nmlabStep(method: TuneMethod): Promise<number> {
  const rows = B * (STEPS + WARMUP);
  const rng = new Rng(1);
  const set: FeatureSet = {
    features: Float32Array.from({ length: rows * D }, () => rng.normal()),
    labels: Int32Array.from({ length: rows }, () => rng.int(C)),
    rows,
    dim: D,
    name: 'bench',
  };
  const stamps: number[] = [];
  const tuner = makeTuner({ method, epochs: 1, batchSize: B, numClasses: C });
  let last = performance.now();
  await tuner.fit(set, {
    onStep: () => {
      const now = performance.now();
      stamps.push(now - last);
      last = now;
    },
  });
  tuner.dispose();
  return median(stamps.slice(WARMUP));
}

async function main(): Promise<void> {
  const choice = await initTfBackend();
  const backend = choice.probes.find((p) => p.name === choice.chosen);
  console.log(`NMLab tuning step, batch ${B}, D ${D}, hidden ${4 * D}, ${C} classes; median of ${STEPS} steps after ${WARMUP} warm-up`);
  console.log(`${new Date().toISOString()}  ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), tfjs ${tf.version_core} backend ${choice.chosen} (${backend?.detail})`);
  const ours = { mlp: await nmlabStep('mlp'), nmtune: await nmlabStep('nmtune') };
  const t1 = torchStep(1);
  const tn = torchStep(0);
  const row = (name: string, ms: number | undefined) => (ms === undefined ? '' : `${name.padEnd(28)} ${ms.toFixed(1).padStart(8)} ms`);
  for (const m of ['mlp', 'nmtune'] as const) {
    console.log(`\n${m.toUpperCase()} step`);
    console.log(row(`NMLab (${choice.chosen})`, ours[m]));
    if (t1) console.log(`${row(`PyTorch ${t1.torch}, 1 thread`, t1[m])}   NMLab/PyTorch ×${(ours[m] / t1[m]).toFixed(2)}`);
    if (tn) console.log(`${row(`PyTorch, ${tn.threads} threads`, tn[m])}   NMLab/PyTorch ×${(ours[m] / tn[m]).toFixed(2)}`);
  }
}

await main();
