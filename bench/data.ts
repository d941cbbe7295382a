/** Where the benchmarks read Fashion-MNIST: the embedded demo subset, else Debian's full set. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readIdxPair } from '../src/core/datasets/idx';
import type { ImageSet } from '../src/core/pretrain/train';

export function fashionMnistDir(): string {
  const demo = join(dirname(fileURLToPath(import.meta.url)), '..', 'resources', 'demo', 'fashion-mnist');
  if (existsSync(join(demo, 'train-images-idx3-ubyte.gz'))) return demo;
  return '/usr/share/datasets/fashion-mnist';
}

/** The training split's IDX files (images, labels) in {@link fashionMnistDir}. */
export function fashionMnistTrainFiles(): { images: string; labels: string } {
  const dir = fashionMnistDir();
  return { images: join(dir, 'train-images-idx3-ubyte.gz'), labels: join(dir, 'train-labels-idx1-ubyte.gz') };
}

/** The first `limit` training images and labels (all of them when there are fewer), 28×28×1. */
export async function fashionMnistTrain(limit: number): Promise<ImageSet> {
  const files = fashionMnistTrainFiles();
  const { images, labels } = await readIdxPair(files.images, files.labels);
  const count = Math.min(limit, images.count);
  return { pixels: images.pixels.subarray(0, count * 784), count, size: [1, 28, 28], labels: labels.subarray(0, count) };
}
