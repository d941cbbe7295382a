#!/usr/bin/env python3
"""PyTorch side of bench/pretrain.bench.ts: the same CNN as NMLab's default backbone
(src/core/pretrain/cnn.ts: stem conv3x3 s2 16 - BN - ReLU; stages 16/32/64 x 1 basic block,
stride 2 from stage 2, 1x1 conv-BN shortcut where the shape changes; GAP; linear head),
trained the same way: uint8 Fashion-MNIST batches of 128 normalised per batch, half of them
flipped, mean cross-entropy, AdamW (lr 0.004, decay 0.05 on conv/linear weights only).

Prints one JSON line: {"threads": [...], "imagesPerSecond": [...], "cpuSecondsPerImage": [...]}.
Usage: /usr/bin/python3 bench/pretrain_torch.py IMAGES.gz LABELS.gz N REPS THREADS[,THREADS]
"""
import gzip, json, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

def read_idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

class ConvBn(nn.Module):
    def __init__(self, cin, cout, k, s):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, 1 if k == 3 else 0, bias=False)
        self.bn = nn.BatchNorm2d(cout)
    def forward(self, x):
        return self.bn(self.conv(x))

class Block(nn.Module):
    def __init__(self, cin, cout, s):
        super().__init__()
        self.c1, self.c2 = ConvBn(cin, cout, 3, s), ConvBn(cout, cout, 3, 1)
        self.sc = ConvBn(cin, cout, 1, s) if (s != 1 or cin != cout) else None
    def forward(self, x):
        y = self.c2(F.relu(self.c1(x)))
        return F.relu(y + (x if self.sc is None else self.sc(x)))

class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvBn(1, 16, 3, 2)
        self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.head = nn.Linear(64, 10)
    def forward(self, x):
        h = self.blocks(F.relu(self.stem(x)))
        return self.head(h.mean((2, 3)))

def epoch(images, labels, n, rng):
    torch.manual_seed(0)
    model = Cnn().train()
    decay = [p for name, p in model.named_parameters() if name.endswith('weight') and p.dim() > 1]
    plain = [p for name, p in model.named_parameters() if not (name.endswith('weight') and p.dim() > 1)]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.05}, {'params': plain, 'weight_decay': 0.0}], lr=0.004)
    order = rng.permutation(n)
    for s in range(n // 128):
        idx = order[s * 128:(s + 1) * 128]
        x = torch.from_numpy(images[idx]).float().div_(255).sub_(0.286).div_(0.353).unsqueeze(1)
        flip = torch.from_numpy(rng.random(128) < 0.5)
        x[flip] = torch.flip(x[flip], dims=[3])
        y = torch.from_numpy(labels[idx].astype(np.int64))
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

def main():
    images, labels = read_idx(sys.argv[1]), read_idx(sys.argv[2])
    n, reps = int(sys.argv[3]), int(sys.argv[4])
    threads = [int(t) for t in sys.argv[5].split(',')]
    out = dict(torch=torch.__version__, threads=threads, imagesPerSecond=[], cpuSecondsPerImage=[])
    rng = np.random.default_rng(0)
    for t in threads:
        torch.set_num_threads(t)
        epoch(images, labels, 256, rng)  # warm-up
        best, cpu = float('inf'), 0.0
        for _ in range(reps):
            c0, t0 = time.process_time(), time.perf_counter()
            epoch(images, labels, n, rng)
            wall = time.perf_counter() - t0
            if wall < best:
                best, cpu = wall, time.process_time() - c0
        done = n // 128 * 128
        out['imagesPerSecond'].append(done / best)
        out['cpuSecondsPerImage'].append(cpu / done)
    print(json.dumps(out))

main()
