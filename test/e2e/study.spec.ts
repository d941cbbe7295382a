/**
 * Studies in browser mode, end to end (issue 9, Must show).
 * 1. From an empty project, with no file written by hand: import Fashion-MNIST IDX files in the
 *    wizard (Debian's dataset-fashion-mnist test set where installed, else the embedded
 *    1000-image subset), import an ONNX backbone (./fixtures/fmnist_cnn.onnx, a small CNN that
 *    PyTorch trained on the embedded *train* subset: trained features, so the numbers mean
 *    something), build a study in the builder by picking them (a hand edit in the text survives
 *    form edits; a schema error is shown with its key path; a syntax error locks the form), read
 *    the expanded graph before starting, run it and watch live progress, open the runs table,
 *    diff two runs, and reach the compare view with the means of the run results on disk.
 * 2. After `nmlab demo --quick` from a terminal, browser mode opened on that folder lists the
 *    demo study in Experiments, its runs in the runs table and its compare view; "Open demo
 *    project" on that folder opens it without running anything again.
 * Screenshots: test-results/screenshots/study-*.png and demo-study-*.png.
 */
import { expect, test, type Page } from '@playwright/test';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, SHOTS, collectPageErrors, createProjectInUi, useServedLab } from './serve';

const debian = '/usr/share/datasets/fashion-mnist';
const fmnist = existsSync(join(debian, 't10k-images-idx3-ubyte.gz')) ? debian : join(ROOT, 'resources', 'demo', 'fashion-mnist');
const onnx = join(ROOT, 'test', 'e2e', 'fixtures', 'fmnist_cnn.onnx');
// The app's demo job uses the same quick sizes as the CLI run of test 2 (it reads this).
const lab = useServedLab({ NMLAB_DEMO_QUICK: '1' });

async function shot(page: Page, name: string): Promise<void> {
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Method and ID test accuracy of every tuning result in a project's runs. */
async function tuneResults(project: string): Promise<Array<{ method: string; accuracy: number }>> {
  const out: Array<{ method: string; accuracy: number }> = [];
  for (const run of await readdir(join(project, 'runs'))) {
    const r = JSON.parse(await readFile(join(project, 'runs', run, 'result.json'), 'utf8').catch(() => 'null')) as { method?: string; test?: { accuracy: number } | null } | null;
    if (r?.method && r.test) out.push({ method: r.method, accuracy: r.test.accuracy });
  }
  return out;
}

/** The numbers of the compare view's cells. */
async function compareCells(page: Page): Promise<number[]> {
  await expect(page.getByTestId('compare-table')).toBeVisible({ timeout: 30_000 });
  const cells = page.locator('[data-testid^="cell-"]');
  await expect(cells.first()).toHaveText(/\d{1,3}\.\d/);
  return (await cells.allTextContents()).map((t) => Number(/\d{1,3}\.\d+/.exec(t)?.[0])).filter(Number.isFinite);
}


test('empty project → dataset, backbone, study built in the builder, live run, runs table, diff, compare', async ({ page }) => {
  test.setTimeout(900_000);
  const errors = collectPageErrors(page);

  // An empty project.
  const project = await createProjectInUi(page, lab, 'fmnist-study', 'Fashion-MNIST study');

  // Dataset: the wizard on the IDX test files, 20 % held out as the test split.
  await page.getByTestId('nav-datasets').click();
  await page.getByTestId('import-kind-idx').click();
  await page.getByTestId('import-idx-images').fill(join(fmnist, 't10k-images-idx3-ubyte.gz'));
  await page.getByTestId('import-idx-labels').fill(join(fmnist, 't10k-labels-idx1-ubyte.gz'));
  await page.getByTestId('import-preview').click();
  await expect(page.getByTestId('import-preview-pane')).toBeVisible({ timeout: 60_000 });
  await page.getByTestId('import-name').fill('Fashion-MNIST');
  await page.getByTestId('import-id').fill('fmnist');
  await page.getByTestId('import-test-percent').fill('20');
  await page.getByTestId('import-run').click();
  await expect(page.getByTestId('dataset-detail')).toHaveAttribute('data-id', 'fmnist', { timeout: 120_000 });
  const rows = Number(await page.getByTestId('dataset-count').textContent());
  expect(rows).toBeGreaterThanOrEqual(1000);

  // Backbone: the ONNX file through the inspector.
  await page.getByTestId('nav-backbones').click();
  await page.getByTestId('onnx-file').fill(onnx);
  await page.getByTestId('onnx-inspect').click();
  await expect(page.getByTestId('onnx-inspection')).toBeVisible({ timeout: 60_000 });
  await page.getByLabel('use features as features').check();
  await page.getByTestId('onnx-id').fill('fmnist-cnn');
  await page.getByTestId('onnx-import-run').click();
  await expect(page.locator('[data-testid=backbone-row][data-id="fmnist-cnn"]')).toBeVisible({ timeout: 120_000 });
  await shot(page, 'study-backbone');

  // Builder: pick them from the project's lists.
  await page.getByTestId('nav-experiments').click();
  const builder = page.getByTestId('builder');
  await expect(builder).toContainText('1 datasets and 1 backbones');
  const text = page.getByTestId('spec-text');
  await page.getByTestId('builder-reset').click();
  await expect(page.getByTestId('pick-backbone-fmnist-cnn')).toBeChecked();
  await expect(page.getByTestId('pick-task-fmnist')).toBeChecked();
  await page.getByTestId('study-name').fill('E2E study');
  // The imported model records no γ; it was pre-trained on clean labels.
  await page.getByTestId('gamma-fmnist-cnn').fill('0');
  await page.getByTestId('target-fmnist-rotation').check();
  await page.getByTestId('target-fmnist-blur').check();
  await page.getByTestId('severity-fmnist').selectOption('2');
  await expect(page.getByTestId('pick-method-lp')).toBeChecked();
  await expect(page.getByTestId('pick-method-nmtune')).toBeChecked();
  await page.getByTestId('study-seeds').fill('0, 1');
  await page.getByTestId('study-epochs').fill('4');
  await expect(text).toHaveValue(/name: E2E study/);
  await expect(text).toHaveValue(/corruption: rotation\n\s+severity: 2/);
  await expect(text).toHaveValue(/seeds: \[0, 1\]/);

  // A hand edit in the text: a comment and a method parameter the form has no field for.
  const handEdited = (await text.inputValue()).replace('  - method: nmtune', '  # NMTune with a hand-tuned learning rate\n  - method: nmtune\n    params: {lr: 0.002}');
  await text.fill(handEdited);
  // The form reads the text, and a form edit keeps the hand edit.
  await page.getByTestId('study-fractions').fill('1');
  await page.getByTestId('study-epochs').fill('20');
  await expect(text).toHaveValue(/# NMTune with a hand-tuned learning rate\n\s+- method: nmtune\n\s+params: \{lr: 0\.002\}/);
  await expect(text).toHaveValue(/epochs: 20/);
  await expect(text).toHaveValue(/- id: fmnist-cnn\n\s+gamma: 0\n/);
  // A schema error names its key; the form still works on parseable text, the plan waits.
  await text.fill((await text.inputValue()).replace('seeds: [0, 1]', 'seeds: 0-1'));
  await expect(page.getByTestId('spec-error')).toContainText('seeds');
  await expect(page.getByTestId('create-start')).toBeDisabled();
  await shot(page, 'study-builder-error');
  await page.getByTestId('study-seeds').fill('0, 1');
  await expect(page.getByTestId('spec-error')).toHaveCount(0);
  // A syntax error locks the form instead of overwriting the text.
  const good = await text.inputValue();
  await text.fill(`${good}\nmethods: [unclosed\n`);
  await expect(page.getByTestId('spec-error')).toContainText('YAML line');
  await expect(page.getByTestId('study-name')).toBeDisabled();
  await text.fill(good);
  await expect(page.getByTestId('study-name')).toBeEnabled();

  // Before start: jobs per stage and an estimated time from the backend's expansion.
  // One fit per backbone × task × method × seed serves the ID test and both OOD targets: 1 × 1 × 2 × 2.
  await expect(page.getByTestId('plan-tune')).toHaveText('4', { timeout: 30_000 });
  await expect(page.getByTestId('plan-eta')).toContainText('about');
  const total = Number(await page.getByTestId('plan-total').textContent());
  expect(total).toBeGreaterThan(4);
  await page.getByTestId('concurrency').fill('1');
  await shot(page, 'study-builder');

  // Run it and watch live progress.
  await page.getByTestId('create-start').click();
  await expect(page).toHaveURL(/#\/experiments\/e2e-study$/);
  await expect(page.locator('[data-state="running"]').first()).toBeVisible({ timeout: 120_000 });
  await expect(page.locator('[data-state="running"] [role="progressbar"]').first()).toBeVisible({ timeout: 120_000 });
  await shot(page, 'study-queue-live');
  // A tuning fit streams its loss curve (the view follows the running fit, then the last one).
  await expect(page.getByTestId('live-loss')).toHaveAttribute('data-points', /^([3-9]|\d{2,})$/, { timeout: 300_000 });
  await shot(page, 'study-queue-live-fit');
  await expect(page.getByTestId('overall-counts')).toContainText(`${total} succeeded · 0 running · 0 pending`, { timeout: 600_000 });
  await shot(page, 'study-queue-done');

  // The runs table: this study's tune runs, two of them diffed.
  await page.getByTestId('to-runs').click();
  await expect(page).toHaveURL(/#\/runs\?study=e2e-study/);
  await page.getByTestId('filter-method').selectOption('nmtune');
  await expect(page.getByTestId('runs-count')).toHaveText(/^2 of \d+ runs/);
  const picks = page.locator('[data-testid^="pick-"]');
  await picks.nth(0).check();
  await picks.nth(1).check();
  await page.getByTestId('diff-runs').click();
  const diff = page.getByTestId('diff-table');
  await expect(diff).toBeVisible();
  // The two nmtune fits differ in their tuning seed; their shared settings are not listed.
  await expect(diff.locator('[data-testid$=".seed"], [data-testid="diff-seed"]').first()).toBeVisible();
  await expect(diff).not.toContainText('params.lr');
  await shot(page, 'study-runs');

  // Every run id links to its page.
  const firstRun = page.locator('[data-testid="runs-table"] td.id a').first();
  const runId = (await firstRun.textContent())!.trim();
  await firstRun.click();
  await expect(page).toHaveURL(new RegExp(`#/runs/${runId.replace(/\./g, '\\.')}$`));
  await expect(page.getByTestId('run-status')).toHaveText('succeeded');
  await page.goBack();

  // Compare: the ID cell of each method is the mean of its two fits' test accuracies on disk.
  await page.goto(`${lab.origin}/#/experiments/e2e-study/compare`);
  await compareCells(page);
  const fits = await tuneResults(project);
  expect(fits.length).toBe(4);
  // Trained features: the fits are well above chance (10 classes).
  expect(Math.max(...fits.map((f) => f.accuracy))).toBeGreaterThan(0.3);
  for (const method of ['lp', 'nmtune']) {
    const of = fits.filter((f) => f.method === method);
    expect(of.length).toBe(2);
    const mean = (100 * (of[0].accuracy + of[1].accuracy)) / 2;
    const cell = page.getByTestId(`cell-fmnist-cnn-fmnist-${method}`);
    const shown = Number(/\d{1,3}\.\d+/.exec((await cell.textContent()) ?? '')?.[0]);
    expect(Math.abs(shown - mean), `${method}: shown ${shown}, mean of the runs ${mean}`).toBeLessThan(0.006);
  }
  await shot(page, 'study-compare');
  expect(errors).toEqual([]);
});

test('browser mode on the folder `nmlab demo` made: the study in Experiments, runs and compare', async ({ page }) => {
  // The quick demo is a whole study (pre-training per γ, features, spectra, fits): minutes.
  test.setTimeout(900_000);
  const demo = join(lab.work, 'nmlab-demo');
  await promisify(execFile)(process.execPath, ['bin/nmlab.mjs', 'demo', '--quick', '--out', demo], {
    cwd: ROOT,
    env: { ...process.env, NMLAB_HOME: join(lab.work, 'home') },
    timeout: 720_000,
  });
  const errors = collectPageErrors(page);

  const studies = (await readdir(join(demo, 'experiments'))).filter((n) => !n.startsWith('.'));
  expect(studies.length).toBe(1);
  const id = studies[0];
  const file = JSON.parse(await readFile(join(demo, 'experiments', id, 'experiment.json'), 'utf8')) as { spec: { name: string } };

  await page.goto(lab.url);
  await page.getByTestId('open-project-dir').fill(demo);
  await page.getByTestId('open-project-submit').click();
  await expect(page.getByTestId('current-project-dir')).toHaveText(demo);

  // Experiments lists the demo study, finished.
  await page.getByTestId('nav-experiments').click();
  const row = page.getByTestId(`study-${id}`);
  await expect(row).toContainText(file.spec.name);
  await expect(row.locator('.badge')).toHaveText('done');
  await shot(page, 'demo-study-experiments');

  // Its runs in the runs table, each linked to its page.
  await page.getByTestId(`runs-of-${id}`).click();
  await expect(page.getByTestId('runs-count')).toHaveText(/^[1-9]\d* of \d+ runs/);
  const n = Number(/^(\d+)/.exec((await page.getByTestId('runs-count').textContent()) ?? '')?.[1]);
  expect(n).toBeGreaterThan(0);
  await expect(page.locator('[data-testid="runs-table"] tbody tr[data-status="succeeded"]')).toHaveCount(n);
  await shot(page, 'demo-study-runs');

  // Its compare view: each cell is a mean of tuning results on disk (ID or OOD), so within their range.
  await page.goto(`${lab.origin}/#/experiments/${id}/compare`);
  const cells = await compareCells(page);
  expect(cells.length).toBeGreaterThan(0);
  for (const v of cells) expect(v).toBeGreaterThan(0);
  for (const v of cells) expect(v).toBeLessThanOrEqual(100);
  await shot(page, 'demo-study-compare');

  // "Open demo project" on the same folder opens it at once: nothing runs again.
  const results = await readFile(join(demo, 'results', 'demo-results.json'), 'utf8');
  await page.getByTestId('nav-projects').click();
  await page.getByTestId('demo-dir').fill(demo);
  await page.getByTestId('demo-open').click();
  await expect(page.getByTestId('demo-opened')).toContainText('Opened the finished demo project', { timeout: 60_000 });
  expect(await readFile(join(demo, 'results', 'demo-results.json'), 'utf8')).toBe(results);
  expect(errors).toEqual([]);
});
