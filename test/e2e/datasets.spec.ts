/**
 * Datasets and backbones in browser mode, end to end: the real built server and renderer in
 * Debian's Chromium. Imports the demo's Fashion-MNIST test subset (1000 images, IDX) through
 * the wizard after a refused bad pair, checks the preview grid and histogram against the files,
 * adds 20 % symmetric label noise and checks the heatmap against a transition matrix computed
 * here from the labels on disk, adds the six corruption domains, pre-trains a tiny backbone and
 * watches its loss curve receive points while it runs, then extracts features with it and
 * inspects its exported ONNX. Screenshots go to test-results/screenshots/{datasets,noise,corruptions,backbones}.png.
 */
import { expect, test, type Page } from '@playwright/test';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, SHOTS, collectPageErrors, createProjectInUi, readNpyVector, useServedLab, watchStates } from './serve';

const demo = join(ROOT, 'resources', 'demo', 'fashion-mnist');
const lab = useServedLab();

/** Count of pixels drawn on a canvas (alpha > 0), i.e. whether the chart actually painted. */
async function paintedPixels(page: Page, selector: string): Promise<number> {
  return page.locator(selector).first().evaluate((el) => {
    const c = el as unknown as { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null };
    const ctx = c.getContext('2d');
    if (!ctx) return 0;
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
}

test('import through the wizard, add label noise, pre-train with a live loss curve, extract features', async ({ page }) => {
  test.setTimeout(300_000);
  const consoleErrors = collectPageErrors(page);

  // A project to work in.
  const project = await createProjectInUi(page, lab, 'fmnist-noise', 'Fashion-MNIST noise');

  // The wizard opens by itself on an empty project; browser mode has no Browse… buttons.
  await page.getByTestId('nav-datasets').click();
  await expect(page.getByTestId('datasets-empty')).toBeVisible();
  const wizard = page.getByTestId('import-wizard');
  await expect(wizard).toBeVisible();
  await page.getByTestId('import-kind-idx').click();
  await expect(page.getByTestId('import-idx-images-browse')).toHaveCount(0);

  // A mismatched pair (1000 images, 6000 labels) is refused with both files named; nothing is written.
  await page.getByTestId('import-idx-images').fill(join(demo, 't10k-images-idx3-ubyte.gz'));
  await page.getByTestId('import-idx-labels').fill(join(demo, 'train-labels-idx1-ubyte.gz'));
  await page.getByTestId('import-preview').click();
  const err = page.getByTestId('import-error');
  await expect(err).toContainText('t10k-images-idx3-ubyte.gz');
  await expect(err).toContainText('train-labels-idx1-ubyte.gz');
  await expect(page.getByTestId('import-preview-pane')).toHaveCount(0);
  expect((await readdir(project)).includes('datasets') ? (await readdir(join(project, 'datasets'))).filter((n) => !n.startsWith('.')) : []).toEqual([]);

  // The right pair: the preview shows 10 classes × 100 images (demo.json: 100 per class).
  await page.getByTestId('import-idx-labels').fill(join(demo, 't10k-labels-idx1-ubyte.gz'));
  await page.getByTestId('import-preview').click();
  await expect(page.getByTestId('import-preview-pane')).toBeVisible();
  await expect(err).toHaveCount(0);
  await expect(page.getByTestId('preview-count')).toHaveText('1000');
  await expect(page.getByTestId('preview-classes')).toHaveText('10');
  const demoInfo = JSON.parse(await readFile(join(demo, 'demo.json'), 'utf8')) as { classes: string[]; test: { count: number; perClass: number } };
  await expect(page.getByTestId('preview-histogram')).toHaveAttribute('data-total', String(demoInfo.test.count));
  // 8 thumbnails per class were drawn on canvases.
  const grid = page.getByTestId('preview-grid');
  await expect(grid).toHaveAttribute('data-images', '80');
  expect(await paintedPixels(page, '[data-testid=preview-grid] canvas')).toBeGreaterThan(100);
  expect(await paintedPixels(page, '[data-testid=preview-histogram] canvas')).toBeGreaterThan(500);
  await page.getByTestId('import-class-names').fill(demoInfo.classes.join(', '));
  await page.getByTestId('import-name').fill('Fashion-MNIST test subset');
  await page.getByTestId('import-id').fill('fmnist');
  await page.getByTestId('import-test-percent').fill('20');
  await expect(grid).toContainText('Ankle boot');
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'datasets.png'), fullPage: true });

  await page.getByTestId('import-run').click();
  const detail = page.getByTestId('dataset-detail');
  await expect(detail).toHaveAttribute('data-id', 'fmnist', { timeout: 60_000 });
  await expect(page.getByTestId('dataset-name')).toHaveText('Fashion-MNIST test subset');
  await expect(page.getByTestId('dataset-count')).toHaveText('1000');
  await expect(page.getByTestId('dataset-split')).toContainText('800 train · 200 test');
  await expect(page.getByTestId('dataset-grid')).toHaveAttribute('data-images', '80');
  const manifest = JSON.parse(await readFile(join(project, 'datasets', 'fmnist', 'dataset.json'), 'utf8')) as { classCounts: number[]; classes: string[] };
  expect(manifest.classCounts).toEqual(new Array(10).fill(demoInfo.test.perClass));
  expect(manifest.classes).toEqual(demoInfo.classes);

  // 20 % symmetric noise on the 800 training rows: a derived dataset with its heatmap.
  await page.getByTestId('action-tab-noise').click();
  await page.getByTestId('noise-percent').fill('20');
  await page.getByTestId('noise-seed').fill('7');
  await page.getByTestId('noise-run').click();
  await expect(page.getByTestId('noise-card')).toBeVisible({ timeout: 60_000 });
  const noisyId = await detail.getAttribute('data-id');
  expect(noisyId).not.toBe('fmnist');
  await expect(page.getByTestId('noise-type')).toHaveText('symmetric');
  await expect(page.getByTestId('noise-ratio')).toHaveText('20.0 %');
  await expect(page.getByTestId('noise-flipped')).toContainText(`${Math.round(0.2 * 800)} of 800`);
  // The heatmap against T computed here from the clean and noisy labels and the split on disk.
  const clean = await readNpyVector(join(project, 'datasets', 'fmnist', 'labels.npy'));
  const noisy = await readNpyVector(join(project, 'datasets', noisyId!, 'labels.npy'));
  const split = await readNpyVector(join(project, 'datasets', 'fmnist', 'split.npy'));
  const counts = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  clean.forEach((y, i) => {
    if (split[i] === 0) counts[y][noisy[i]]++;
  });
  const expected = counts.map((row) => row.map((c) => c / row.reduce((a, b) => a + b, 0)));
  const cells = page.getByTestId('noise-heatmap').getByTestId('heatmap-cell');
  await expect(cells).toHaveCount(100);
  const shown = (await cells.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))))) as number[];
  shown.forEach((v, k) => expect(v).toBeCloseTo(expected[Math.floor(k / 10)][k % 10], 12));
  const flips = clean.filter((y, i) => y !== noisy[i]).length;
  expect(flips).toBe(160);
  // Flipped labels are outlined among the sample images.
  expect(await page.locator('[data-testid=dataset-grid] canvas.marked').count()).toBeGreaterThan(0);
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'noise.png'), fullPage: true });

  // The list shows the derived set under its parent.
  await expect(page.locator(`[data-testid=dataset-row][data-id="${noisyId}"]`)).toContainText('noise');

  // Corruption domains of the clean set's 200 test rows: one grid column per domain.
  await page.locator('[data-testid=dataset-row][data-id="fmnist"]').click();
  await expect(detail).toHaveAttribute('data-id', 'fmnist');
  await page.getByTestId('action-tab-corrupt').click();
  await page.getByTestId('corrupt-run').click();
  await expect(detail).toHaveAttribute('data-id', 'fmnist-ood', { timeout: 60_000 });
  await expect(page.getByTestId('dataset-count')).toHaveText(String(200 * 7));
  const oodGrid = page.getByTestId('dataset-grid');
  for (const domain of ['clean', 'rotation', 'inversion', 'edge', 'gaussian-noise', 'blur', 'low-contrast']) await expect(oodGrid.locator('th.domain', { hasText: domain })).toHaveCount(1);
  // With 7 domains a cell shows 2 thumbnails: 10 classes × 7 domains × 2.
  await expect(oodGrid).toHaveAttribute('data-images', '140');
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'corruptions.png'), fullPage: true });

  // Pre-train a tiny backbone (320 rows, batch 32, 2 epochs: 20 steps) on the clean set with γ = 10 %.
  await page.getByTestId('nav-backbones').click();
  await expect(page.getByTestId('backbones-empty')).toBeVisible();
  await page.getByTestId('pretrain-dataset').selectOption('fmnist');
  await page.getByTestId('pretrain-gamma').fill('10');
  await page.getByTestId('pretrain-epochs').fill('2');
  await page.getByTestId('pretrain-batch').fill('32');
  await page.getByTestId('pretrain-limit').fill('320');
  // Every point count the live chart shows while the job runs.
  const states = await watchStates(page, { state: { testid: 'pretrain-job', attribute: 'data-state' }, points: { testid: 'pretrain-loss-chart', attribute: 'data-points' } });
  await page.getByTestId('pretrain-start').click();
  const job = page.getByTestId('pretrain-job').first();
  await expect(job).toBeVisible();
  await expect(job).toHaveAttribute('data-state', 'succeeded', { timeout: 240_000 });
  const seen = (await states.read())
    .filter((s) => s.state === 'running')
    .map((s) => Number(s.points ?? '0'))
    .filter((n, i, all) => i === 0 || all[i - 1] !== n);
  // The curve grew while the job was running: several distinct, increasing point counts.
  expect(seen.filter((n) => n > 0).length, `points seen while running: ${seen}`).toBeGreaterThan(1);
  expect(seen).toEqual([...seen].sort((a, b) => a - b));
  // The job reports the loss on a subset of its 20 steps (at least each epoch's first and last)
  // plus one mean per epoch: between 2·2 + 2 and 20 + 2 points.
  const points = Number(await page.getByTestId('pretrain-loss-chart').getAttribute('data-points'));
  expect(points).toBeGreaterThanOrEqual(6);
  expect(points).toBeLessThanOrEqual(22);
  expect(await paintedPixels(page, '[data-testid=pretrain-loss-chart] canvas')).toBeGreaterThan(500);
  await expect(page.getByTestId('pretrain-result')).toContainText('backbones/nmlab-cnn.g10');
  const row = page.locator('[data-testid=backbone-row][data-id="nmlab-cnn.g10"]');
  await expect(row).toBeVisible();
  await expect(row.getByTestId('backbone-noise')).toContainText('symmetric γ = 10 %');
  const saved = JSON.parse(await readFile(join(project, 'backbones', 'nmlab-cnn.g10', 'backbone.json'), 'utf8')) as {
    provenance: { noise: { ratio: number; type: string }; flippedCount: number; trainCount: number };
  };
  expect(saved.provenance.noise).toMatchObject({ type: 'symmetric', ratio: 0.1 });
  expect(saved.provenance.trainCount).toBe(320);
  expect(saved.provenance.flippedCount).toBe(32);

  // Features of the noisy set with the new backbone; then the inspector on its ONNX file.
  await page.getByTestId('extract-backbone').selectOption('backbones/nmlab-cnn.g10');
  await page.getByTestId('extract-dataset').selectOption(noisyId!);
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('extract-result')).toContainText('1000 ×', { timeout: 60_000 });
  await page.getByTestId('onnx-file').fill(join(project, 'backbones', 'nmlab-cnn.g10', 'model.onnx'));
  await page.getByTestId('onnx-inspect').click();
  await expect(page.getByTestId('onnx-inspection')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('onnx-outputs')).toContainText('features');
  await expect(page.getByTestId('pre-channels')).toHaveValue('1');
  await expect(page.getByTestId('pre-height')).toHaveValue('28');
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'backbones.png'), fullPage: true });
  // An unreadable model is reported with its name.
  await page.getByTestId('onnx-file').fill(join(demo, 'demo.json'));
  await page.getByTestId('onnx-inspect').click();
  await expect(page.getByTestId('onnx-error')).toContainText('demo.json', { timeout: 60_000 });

  expect(consoleErrors).toEqual([]);
});
