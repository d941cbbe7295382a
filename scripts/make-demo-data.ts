/**
 * Builds resources/demo/fashion-mnist/ — the class-balanced Fashion-MNIST subset that ships
 * with NMLab for `nmlab demo` — from Debian's dataset-fashion-mnist package
 * (/usr/share/datasets/fashion-mnist). Deterministic: from each class it takes the first
 * N images in file order (the files are already shuffled), so re-running gives identical bytes.
 *
 *   npx tsx scripts/make-demo-data.ts [--train-per-class 600] [--test-per-class 100]
 *                                     [--source /usr/share/datasets/fashion-mnist] [--out resources/demo/fashion-mnist]
 *
 * Default 600 + 100 per class (6000 train, 1000 test, ≈3 MB gzipped). Why: the demo pre-trains
 * five CNNs (one per noise ratio) on the wasm backend and must finish in 10 minutes on two
 * cores with everything else (features, spectra, LP/MLP/NMTune); 6000 images is what fits a
 * few epochs of a small CNN per γ in that budget while keeping enough examples per class for
 * label noise to bite (at γ = 5 % that is still 30 flipped labels per class) and a 1000-image
 * test set gives accuracy to about ±1.5 % (binomial std at 85 %). The demo may use fewer.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readIdxPair, writeIdxUint8 } from '../src/core/datasets/idx';

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const { values } = parseArgs({
  options: {
    'train-per-class': { type: 'string', default: '600' },
    'test-per-class': { type: 'string', default: '100' },
    source: { type: 'string', default: '/usr/share/datasets/fashion-mnist' },
    out: { type: 'string', default: 'resources/demo/fashion-mnist' },
  },
});

async function subset(images: string, labels: string, perClass: number) {
  const { images: im, labels: y } = await readIdxPair(images, labels);
  const per = im.height * im.width;
  const taken = new Array<number>(10).fill(0);
  const rows: number[] = [];
  for (let i = 0; i < im.count && rows.length < perClass * 10; i++) {
    if (taken[y[i]] < perClass) {
      taken[y[i]]++;
      rows.push(i);
    }
  }
  if (taken.some((t) => t < perClass)) throw new Error(`${images}: not enough images for ${perClass} per class (${taken.join(',')})`);
  const pixels = new Uint8Array(rows.length * per);
  const out = new Uint8Array(rows.length);
  rows.forEach((r, k) => {
    pixels.set(im.pixels.subarray(r * per, (r + 1) * per), k * per);
    out[k] = y[r];
  });
  return { pixels, labels: out, count: rows.length, height: im.height, width: im.width, sourceRows: rows };
}

async function main() {
  const trainPer = Number(values['train-per-class']);
  const testPer = Number(values['test-per-class']);
  const src = values.source!;
  const out = values.out!;
  await mkdir(out, { recursive: true });
  const train = await subset(join(src, 'train-images-idx3-ubyte.gz'), join(src, 'train-labels-idx1-ubyte.gz'), trainPer);
  const test = await subset(join(src, 't10k-images-idx3-ubyte.gz'), join(src, 't10k-labels-idx1-ubyte.gz'), testPer);
  const files: Record<string, string> = {};
  for (const [name, part] of [['train', train], ['t10k', test]] as const) {
    const img = `${name}-images-idx3-ubyte.gz`;
    const lab = `${name}-labels-idx1-ubyte.gz`;
    await writeIdxUint8(join(out, img), [part.count, part.height, part.width], part.pixels);
    await writeIdxUint8(join(out, lab), [part.count], part.labels);
    for (const f of [img, lab]) files[f] = createHash('sha256').update(await readFile(join(out, f))).digest('hex');
  }
  const manifest = {
    name: 'Fashion-MNIST subset (NMLab demo)',
    source: 'https://github.com/zalandoresearch/fashion-mnist via Debian dataset-fashion-mnist',
    license: 'MIT (see LICENSE-fashion-mnist.txt)',
    classes: FASHION_MNIST_CLASSES,
    selection: `first ${trainPer} (train) and ${testPer} (test) images of each class in file order`,
    train: { count: train.count, perClass: trainPer, images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
    test: { count: test.count, perClass: testPer, images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
    imageSize: [train.height, train.width],
    sha256: files,
    madeBy: 'scripts/make-demo-data.ts',
  };
  await writeFile(join(out, 'demo.json'), JSON.stringify(manifest, null, 2) + '\n');
  process.stdout.write(`wrote ${train.count} train + ${test.count} test images to ${out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`make-demo-data: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
