/**
 * Asymmetric label noise along a class map (paper §7.3) from the UI, in browser mode: on the
 * dataset page the noise form's class map derives a dataset whose flips follow the map (checked
 * against the labels on disk), and in the study builder the pre-training section writes
 * `pretrain.noise` (type, seed, map) into the spec text, whose error the shared describer
 * states until a map entry is picked, and the plan counts the noise and pre-training jobs.
 * Screenshots: test-results/screenshots/noise-map-dataset.png, noise-map-builder.png and
 * noise-map-builder-dark.png.
 */
import { expect, test, type Page } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT, SHOTS, collectPageErrors, createProjectInUi, readNpyVector, useServedLab } from './serve';

const demo = join(ROOT, 'resources', 'demo', 'fashion-mnist');
const lab = useServedLab();

async function shot(page: Page, name: string): Promise<void> {
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

test('class map in the dataset noise form and in the study builder', async ({ page }) => {
  const errors = collectPageErrors(page);
  const project = await createProjectInUi(page, lab, 'noise-map', 'Class maps');

  // Fashion-MNIST's embedded subset with its class names, 20 % held out.
  const classes = (JSON.parse(await readFile(join(demo, 'demo.json'), 'utf8')) as { classes: string[] }).classes;
  await page.getByTestId('nav-datasets').click();
  await page.getByTestId('import-kind-idx').click();
  await page.getByTestId('import-idx-images').fill(join(demo, 't10k-images-idx3-ubyte.gz'));
  await page.getByTestId('import-idx-labels').fill(join(demo, 't10k-labels-idx1-ubyte.gz'));
  await page.getByTestId('import-preview').click();
  await expect(page.getByTestId('import-preview-pane')).toBeVisible({ timeout: 60_000 });
  await page.getByTestId('import-class-names').fill(classes.join(', '));
  await page.getByTestId('import-name').fill('Fashion-MNIST');
  await page.getByTestId('import-id').fill('fmnist');
  await page.getByTestId('import-test-percent').fill('20');
  await page.getByTestId('import-run').click();
  const detail = page.getByTestId('dataset-detail');
  await expect(detail).toHaveAttribute('data-id', 'fmnist', { timeout: 60_000 });

  // The noise form: asymmetric along a map, shirts (6) → T-shirts (0) and pullovers (2) → coats (4).
  await page.getByTestId('action-tab-noise').click();
  await page.getByTestId('noise-type-select').selectOption('asymmetric');
  await expect(page.getByTestId('noise-run')).toBeDisabled();
  await expect(page.getByTestId('noise-map-6')).toContainText(`0 · ${classes[0]}`);
  await page.getByTestId('noise-map-6').selectOption('0');
  await page.getByTestId('noise-map-2').selectOption('4');
  await page.getByTestId('noise-percent').fill('40');
  await page.getByTestId('noise-seed').fill('3');
  await expect(page.getByTestId('noise-map')).toContainText('2 of 10 classes flip');
  await shot(page, 'noise-map-dataset');
  await page.getByTestId('noise-run').click();
  await expect(page.getByTestId('noise-card')).toBeVisible({ timeout: 60_000 });
  const noisyId = (await detail.getAttribute('data-id'))!;
  expect(noisyId).not.toBe('fmnist');
  const manifest = JSON.parse(await readFile(join(project, 'datasets', noisyId, 'dataset.json'), 'utf8')) as { derived: { noise: { type: string; params: { map: Record<string, number> } } } };
  expect(manifest.derived.noise).toMatchObject({ type: 'asymmetric', params: { map: { '2': 4, '6': 0 } } });
  // On disk: round(0.4 · the mapped train rows) flipped, each to its class's target, nothing else changed.
  const clean = await readNpyVector(join(project, 'datasets', 'fmnist', 'labels.npy'));
  const noisy = await readNpyVector(join(project, 'datasets', noisyId, 'labels.npy'));
  const split = await readNpyVector(join(project, 'datasets', 'fmnist', 'split.npy'));
  const target: Record<number, number> = { 2: 4, 6: 0 };
  const eligible = clean.filter((y, i) => split[i] === 0 && y in target).length;
  const changed = clean.map((y, i) => ({ y, i })).filter(({ y, i }) => noisy[i] !== y);
  expect(changed.length).toBe(Math.round(0.4 * eligible));
  for (const { y, i } of changed) expect([split[i], noisy[i]]).toEqual([0, target[y]]);

  // The builder: pre-train with asymmetric noise along a map picked in the form.
  await page.getByTestId('nav-experiments').click();
  const text = page.getByTestId('spec-text');
  await page.getByTestId('builder-reset').click();
  await page.getByTestId('pick-pretrain').check();
  await page.getByTestId('pretrain-dataset').selectOption('fmnist');
  await page.getByTestId('pretrain-noise-type').selectOption('asymmetric');
  // No entry yet: the shared describer's sentence at the map's key, no plan.
  await expect(page.getByTestId('spec-error')).toContainText('pretrain.noise.map: asymmetric noise needs a class map with at least one entry');
  await expect(page.getByTestId('create-start')).toBeDisabled();
  await expect(page.getByTestId('pretrain-noise-map-6')).toHaveAttribute('aria-label', `target of 6 · ${classes[6]}`);
  await page.getByTestId('pretrain-noise-map-6').selectOption('0');
  await page.getByTestId('pretrain-noise-seed').fill('5');
  await expect(text).toHaveValue(/ {2}noise:\n {4}type: asymmetric\n {4}map: \{"6": 0\}\n {4}seed: 5\n/);
  await expect(page.getByTestId('spec-error')).toHaveCount(0);
  // A hand edit elsewhere in the text stays through the next map edit; the form reads the text.
  await text.fill((await text.inputValue()).replace('  gammas:', '  # γ as in §7.3\n  gammas:'));
  await page.getByTestId('pretrain-noise-map-2').selectOption('4');
  await expect(text).toHaveValue(/# γ as in §7\.3\n {2}gammas:/);
  await expect(text).toHaveValue(/map: \{"2": 4, "6": 0\}/);
  await text.fill((await text.inputValue()).replace('map: {"2": 4, "6": 0}', 'map: {"2": 4, "6": 0, "9": 7}'));
  await expect(page.getByTestId('pretrain-noise-map-9')).toHaveValue('7');
  const spec = parse(await text.inputValue()) as { pretrain: { noise: unknown; gammas: number[] } };
  expect(spec.pretrain.noise).toEqual({ type: 'asymmetric', map: { '2': 4, '6': 0, '9': 7 }, seed: 5 });
  // The plan: one noisy label set and one backbone per γ (one replicate seed).
  const perGamma = String(spec.pretrain.gammas.length);
  await expect(page.getByTestId('plan-noise')).toHaveText(perGamma, { timeout: 30_000 });
  await expect(page.getByTestId('plan-pretrain')).toHaveText(perGamma);
  await expect(page.getByTestId('create-start')).toBeEnabled();
  await page.getByTestId('pretrain-noise-map-6').scrollIntoViewIfNeeded();
  await shot(page, 'noise-map-builder');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'noise-map-builder-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  // Symmetric again: the map goes, the seed stays.
  await page.getByTestId('pretrain-noise-type').selectOption('symmetric');
  await expect(page.getByTestId('pretrain-noise-map')).toHaveCount(0);
  expect((parse(await text.inputValue()) as { pretrain: { noise: unknown } }).pretrain.noise).toEqual({ type: 'symmetric', seed: 5 });
  expect(errors).toEqual([]);
});
