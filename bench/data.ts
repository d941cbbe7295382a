/** Where the benchmarks read Fashion-MNIST: the embedded demo subset, else Debian's full set. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function fashionMnistDir(): string {
  const demo = join(dirname(fileURLToPath(import.meta.url)), '..', 'resources', 'demo', 'fashion-mnist');
  if (existsSync(join(demo, 'train-images-idx3-ubyte.gz'))) return demo;
  return '/usr/share/datasets/fashion-mnist';
}
