/**
 * Step time of MLP tuning and NMTune (batch 128, D = 512, hidden 2048, 10 classes; DESIGN §4
 * shapes) for NMLab's tuner against PyTorch on the CPU (Debian's python3-torch, 1 thread and
 * its default thread count), all measured in the same run. A "step" is what one optimisation
 * step costs in each: forward, loss terms, backward, AdamW update (NMLab: plus gathering the
 * batch and reading the loss terms back, as its training loop does).
 *
 *   npx tsx bench/tune.bench.ts            (BENCH_STEPS=n to change the number of timed steps)
 *
 * NMLab is timed through FeatureTuner.fit itself, from its per-step events, with both of its
 * engines: tfjs (autodiff; wasm backend here) and onnxruntime (hand-written backward pass,
 * src/core/tuning/ortGraphs.ts; NMLAB_ORT_THREADS sets its threads, default all cores). The
 * first steps (kernel set-up, XNNPACK operator creation) are excluded.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../src/core/tf/backend';
import { makeTuner, type TuneMethod } from '../src/core/tuning/tuner';
import type { FeatureSet } from '../src/core/tuning/data';
import { Rng } from '../src/core/tuning/rng';
import { ortThreads } from '../src/core/onnx/providers';
import { median } from './stats';

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
    times, cpu = [], []
    for i in range(steps + warm):
        t0 = time.perf_counter(); c0 = time.process_time()
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
        times.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    med = lambda a: sorted(a[warm:])[len(a[warm:]) // 2] * 1000
    return {"wall": med(times), "cpu": med(cpu)}
print(json.dumps({"threads": torch.get_num_threads(), "mlp": run(False), "nmtune": run(True), "torch": torch.__version__}))
`;

/** Median milliseconds per step: wall clock, and CPU time of the process (all its threads). */
interface StepTime {
  wall: number;
  cpu: number;
}

interface TorchResult {
  threads: number;
  mlp: StepTime;
  nmtune: StepTime;
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

async function nmlabStep(method: TuneMethod, engine: 'tfjs' | 'ort'): Promise<StepTime> {
  const rows = B * (STEPS + WARMUP);
  const rng = new Rng(1);
  const set: FeatureSet = {
    features: Float32Array.from({ length: rows * D }, () => rng.normal()),
    labels: Int32Array.from({ length: rows }, () => rng.int(C)),
    rows,
    dim: D,
    name: 'bench',
  };
  const wall: number[] = [];
  const cpu: number[] = [];
  const tuner = makeTuner({ method, epochs: 1, batchSize: B, numClasses: C, engine });
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  await tuner.fit(set, {
    onStep: () => {
      const now = performance.now();
      const c = process.cpuUsage(lastCpu);
      wall.push(now - last);
      cpu.push((c.user + c.system) / 1000);
      last = now;
      lastCpu = process.cpuUsage();
    },
  });
  tuner.dispose();
  return { wall: median(wall.slice(WARMUP)), cpu: median(cpu.slice(WARMUP)) };
}

async function main(): Promise<void> {
  const choice = await initTfBackend();
  const backend = choice.probes.find((p) => p.name === choice.chosen);
  console.log(`NMLab tuning step, batch ${B}, D ${D}, hidden ${4 * D}, ${C} classes; median of ${STEPS} steps after ${WARMUP} warm-up`);
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`${new Date().toISOString()}  ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), tfjs ${tf.version_core} backend ${choice.chosen} (${backend?.detail})`);
  const tfjs = { mlp: await nmlabStep('mlp', 'tfjs'), nmtune: await nmlabStep('nmtune', 'tfjs') };
  const ort = { mlp: await nmlabStep('mlp', 'ort'), nmtune: await nmlabStep('nmtune', 'ort') };
  const t1 = torchStep(1);
  const tn = torchStep(0);
  // Other processes share this machine: CPU time per step is the fairer single-thread
  // comparison when it is busy; wall time is what a user waits.
  const row = (name: string, t: StepTime) => `${name.padEnd(30)} wall ${t.wall.toFixed(1).padStart(7)} ms   cpu ${t.cpu.toFixed(1).padStart(7)} ms`;
  const ratio = (a: StepTime, b: StepTime) => `   NMLab/PyTorch wall ×${(a.wall / b.wall).toFixed(2)}, cpu ×${(a.cpu / b.cpu).toFixed(2)}`;
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const m of ['mlp', 'nmtune'] as const) {
    console.log(`\n${m.toUpperCase()} step`);
    if (t1) console.log(row(`PyTorch ${t1.torch}, 1 thread`, t1[m]));
    if (tn) console.log(row(`PyTorch, ${tn.threads} thread(s) default`, tn[m]));
    for (const [name, ours] of [[`NMLab tfjs-${choice.chosen}`, tfjs[m]], [`NMLab onnxruntime ${ortThreads()} thr`, ort[m]]] as const) {
      console.log(row(name, ours));
      if (t1) console.log(`${''.padEnd(30)} vs PyTorch 1 thread${ratio(ours, t1[m])}`);
      if (tn) console.log(`${''.padEnd(30)} vs PyTorch default${ratio(ours, tn[m])}`);
    }
  }
}

await main();
