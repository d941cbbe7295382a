/**
 * Feature-extraction benchmark (issue 4): images/s of NMLab (onnxruntime-node, CPU EP, via
 * FeatureExtractor) against PyTorch eager (Debian's /usr/bin/python3, torch.no_grad) on the
 * same ResNet-style model and the same float32 batch, in one run. Target: ≥ 1.5× PyTorch.
 *
 *   npx tsx bench/features.bench.ts [--size 64] [--batch 64] [--batches 4] [--reps 3] [--threads 2] [--no-record]
 *
 * The model (built and exported by PyTorch here, seeded): stem Conv3×3(3→32)+BN+ReLU, four
 * residual blocks 32, 64/2, 128/2, 256/2 (Conv-BN-ReLU-Conv-BN + identity or 1×1-projection
 * Add), global average pooling, Gemm 256→128 ("features"). Both sides use --threads intra-op
 * threads, get the same batch, and are timed over --batches batches after one warm-up batch;
 * best of --reps (steadiest on a shared machine). NMLab is also timed end to end from uint8
 * pixels (preprocessing included). Outputs are compared to confirm it is the same computation.
 * Results are appended to bench/RESULTS.md unless --no-record.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../src/core/arrays/npy';
import { FeatureExtractor } from '../src/core/features/extract';
import type { RawImage } from '../src/core/images/image';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const SIZE = arg('size', 64);
const BATCH = arg('batch', 64);
const BATCHES = arg('batches', 4);
const REPS = arg('reps', 3);
const THREADS = arg('threads', 2);
const RECORD = !process.argv.includes('--no-record');

const PY = String.raw`
import json, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
out, size, batch, batches, reps, threads = sys.argv[1], *map(int, sys.argv[2:7])
torch.manual_seed(0); torch.set_num_threads(threads)
class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        s.p = None if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(s, x):
        y = s.b2(s.c2(F.relu(s.b1(s.c1(x)))))
        return F.relu(y + (x if s.p is None else s.p(x)))
class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        s.blocks = nn.Sequential(Block(32, 32, 1), Block(32, 64, 2), Block(64, 128, 2), Block(128, 256, 2))
        s.fc = nn.Linear(256, 128)
    def forward(s, x):
        return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.blocks(s.stem(x)), 1), 1))
m = Net()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
m.eval()
torch.onnx.export(m, torch.zeros(1, 3, size, size), out + '/model.onnx', input_names=['pixels'], output_names=['features'],
                  dynamic_axes={'pixels': {0: 'n'}, 'features': {0: 'n'}}, opset_version=13)
x = torch.randn(batch, 3, size, size)
np.save(out + '/x.npy', x.numpy())
with torch.no_grad():
    np.save(out + '/y.npy', m(x).numpy())
    m(x)  # warm-up
    best, cpu = float('inf'), float('inf')
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(batches): m(x)
        best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
print(json.dumps({'torch': torch.__version__, 'seconds': best, 'cpuSeconds': cpu, 'images': batch * batches}))
`;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'nmlab-fbench-'));
  try {
    const load0 = loadavg()[0];
    const torch = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', PY, dir, String(SIZE), String(BATCH), String(BATCHES), String(REPS), String(THREADS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    ) as { torch: string; seconds: number; cpuSeconds: number; images: number };
    const x = (await readNpy(join(dir, 'x.npy'))).data as Float32Array;
    const yRef = (await readNpy(join(dir, 'y.npy'))).data as Float32Array;
    const fx = await FeatureExtractor.open({ onnxFile: join(dir, 'model.onnx') }, { threads: THREADS, overrides: { mean: [0.5], std: [0.25] } });
    const dims = [BATCH, 3, SIZE, SIZE];
    const y = await fx.runTensor(x, dims); // warm-up, and the parity check
    let diff = 0;
    for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(y[i] - yRef[i]));
    let best = Infinity;
    let bestCpu = Infinity;
    for (let r = 0; r < REPS; r++) {
      const t = performance.now();
      const c = process.cpuUsage();
      for (let b = 0; b < BATCHES; b++) await fx.runTensor(x, dims);
      best = Math.min(best, (performance.now() - t) / 1000);
      const dc = process.cpuUsage(c);
      bestCpu = Math.min(bestCpu, (dc.user + dc.system) / 1e6);
    }
    // End to end from uint8 pixels: decode-free preprocessing (resize is identity here) + inference.
    const imgs: RawImage[] = Array.from({ length: BATCH }, (_, i) => ({
      height: SIZE,
      width: SIZE,
      channels: 3,
      data: Uint8Array.from({ length: SIZE * SIZE * 3 }, (_, k) => (k * 31 + i * 17) % 256),
    }));
    await fx.runImages(imgs);
    let bestE2E = Infinity;
    for (let r = 0; r < REPS; r++) {
      const t = performance.now();
      for (let b = 0; b < BATCHES; b++) await fx.runImages(imgs);
      bestE2E = Math.min(bestE2E, (performance.now() - t) / 1000);
    }
    await fx.release();
    const n = BATCH * BATCHES;
    const ortRate = n / best;
    const e2eRate = n / bestE2E;
    const torchRate = torch.images / torch.seconds;
    // Images per CPU-second (all threads of each process): steadier than wall time when the machine is shared.
    const ortCpuRate = n / bestCpu;
    const torchCpuRate = torch.images / torch.cpuSeconds;
    const load1 = loadavg()[0];
    const lines = [
      `model: ResNet-style (4 residual blocks, 32→256 ch, GAP, Gemm→128), input 3×${SIZE}×${SIZE}, batch ${BATCH}, ${BATCHES} batches, best of ${REPS}, ${THREADS} threads`,
      `PyTorch ${torch.torch} eager (no_grad):        ${torchRate.toFixed(1)} images/s`,
      `NMLab onnxruntime-node (same float batch):  ${ortRate.toFixed(1)} images/s   ratio ${(ortRate / torchRate).toFixed(2)}× (target ≥ 1.5×)`,
      `NMLab end to end from uint8 (+preprocess):  ${e2eRate.toFixed(1)} images/s   ratio ${(e2eRate / torchRate).toFixed(2)}×`,
      `per CPU-second (all threads): PyTorch ${torchCpuRate.toFixed(1)}, NMLab ${ortCpuRate.toFixed(1)} images/CPU-s, ratio ${(ortCpuRate / torchCpuRate).toFixed(2)}×`,
      `max |ORT − PyTorch| on the batch: ${diff.toExponential(2)}`,
      `load average (1 min) before/after: ${load0.toFixed(2)} / ${load1.toFixed(2)} on ${cpus().length} cores`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (RECORD) {
      const md = [
        '',
        `## features.bench.ts — ${new Date().toISOString()}`,
        '',
        `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; Node ${process.version}; backend onnxruntime-node CPU EP vs PyTorch ${torch.torch} eager (Debian python3).`,
        '',
        '```',
        ...lines,
        '```',
        '',
      ];
      appendFileSync(join(dirname(fileURLToPath(import.meta.url)), 'RESULTS.md'), md.join('\n'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`features.bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
