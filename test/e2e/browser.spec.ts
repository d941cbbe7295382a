/**
 * Browser mode end to end: the real built server and renderer, driven in Debian's Chromium.
 * Creates a project through the UI, checks it on disk, reloads and finds it listed; runs the
 * doctor from the Environment page and reads its measured numbers. Saves screenshots of both
 * pages to test-results/screenshots/.
 */
import { expect, test } from '@playwright/test';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SHOTS, useServedLab, watchStates } from './serve';

const lab = useServedLab();

test('the page and its API refuse a browser without the token', async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const res = await page.goto(lab.origin + '/');
  expect(res?.status()).toBe(401);
  await expect(page.locator('body')).toContainText('Unauthorized');
  await context.close();
});

test('a project created in the UI is on disk and listed again after a reload', async ({ page }) => {
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));

  await page.goto(lab.url);
  // The token was traded for a cookie and dropped from the address bar.
  await expect(page).toHaveURL(/\/#\/projects$/);
  expect(page.url()).not.toContain('token');
  await expect(page.getByTestId('connection')).toContainText('Browser mode');
  await expect(page.getByTestId('recent-empty')).toBeVisible();
  // No folder dialog in browser mode.
  await expect(page.getByTestId('new-project-browse')).toHaveCount(0);

  const dir = join(lab.work, 'projects', 'cifar-noise');
  await page.getByTestId('new-project-dir').fill(dir);
  await page.getByTestId('new-project-name').fill('CIFAR-10 noise study');
  await page.getByTestId('new-project-create').click();
  await expect(page.getByTestId('current-project-name')).toHaveText('CIFAR-10 noise study');
  await expect(page.getByTestId('header-project')).toContainText('CIFAR-10 noise study');
  // The form is cleared once the project is created.
  await expect(page.getByTestId('new-project-dir')).toHaveValue('');

  const manifest = JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')) as { name: string; schemaVersion: number; app: { name: string } };
  expect(manifest.name).toBe('CIFAR-10 noise study');
  expect(manifest.schemaVersion).toBe(1);
  expect(manifest.app.name).toBe('nmlab');

  // A second project whose folder then disappears is listed as unavailable.
  const gone = join(lab.work, 'projects', 'scratch');
  await page.getByTestId('new-project-dir').fill(gone);
  await page.getByTestId('new-project-create').click();
  await expect(page.getByTestId('current-project-name')).toHaveText('scratch');
  await expect(page.getByTestId('new-project-dir')).toHaveValue('');
  await rm(gone, { recursive: true, force: true });

  // Creating in a folder that is already a project is refused with a message, not a crash.
  await page.getByTestId('new-project-dir').fill(dir);
  await page.getByTestId('new-project-name').fill('Duplicate');
  await page.getByTestId('new-project-create').click();
  await expect(page.getByTestId('new-project-error')).toBeVisible();
  await page.getByTestId('new-project-dir').fill('');
  await page.getByTestId('new-project-name').fill('');

  // Rename the first project through the UI and see it on disk.
  await page.locator(`[data-testid=recent-row][data-dir="${dir}"]`).getByTestId('recent-open').click();
  await expect(page.getByTestId('current-project-name')).toHaveText('CIFAR-10 noise study');
  await page.getByTestId('rename-start').click();
  await page.getByTestId('rename-input').fill('CIFAR-10 label-noise study');
  await page.getByTestId('rename-save').click();
  await expect(page.getByTestId('current-project-name')).toHaveText('CIFAR-10 label-noise study');
  const renamed = JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')) as { name: string };
  expect(renamed.name).toBe('CIFAR-10 label-noise study');

  await page.reload();
  const row = page.locator(`[data-testid=recent-row][data-dir="${dir}"]`);
  await expect(row).toBeVisible();
  await expect(row).toContainText('CIFAR-10 label-noise study');
  const goneRow = page.locator(`[data-testid=recent-row][data-dir="${gone}"]`);
  await expect(goneRow.getByTestId('recent-unavailable')).toBeVisible();
  await expect(goneRow.getByTestId('recent-open')).toBeDisabled();
  await expect(page.getByTestId('recent-row')).toHaveCount(2);

  await page.screenshot({ path: join(SHOTS, 'projects.png'), fullPage: true });
  expect(consoleErrors).toEqual([]);
});

test('the Environment page runs the doctor and shows its measurements', async ({ page }) => {
  await page.goto(lab.url);
  await page.getByTestId('nav-environment').click();
  await expect(page).toHaveURL(/#\/environment$/);
  await expect(page.getByTestId('env-empty')).toBeVisible();

  // Every progress value the bar shows, however briefly.
  const progress = await watchStates(page, { pct: { testid: 'env-progress', attribute: 'aria-valuenow' } });
  await page.getByTestId('env-run').click();
  const gflops = page.getByTestId('env-gflops');
  await expect(gflops).toBeVisible({ timeout: 150_000 });
  await expect(page.getByTestId('env-progress')).toHaveCount(0);
  await expect(page.getByTestId('env-error')).toHaveCount(0);

  const seen = (await progress.read()).flatMap((s) => (s.pct === null ? [] : [Number(s.pct)]));
  expect(seen.length, `progress values seen: ${seen}`).toBeGreaterThan(1);
  expect(Math.max(...seen)).toBeGreaterThan(0);

  const measured = Number(await gflops.textContent());
  expect(measured).toBeGreaterThan(0);
  const chosen = (await page.getByTestId('env-chosen-backend').textContent())?.trim() ?? '';
  expect(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).toContain(chosen);
  // The table marks the same backend as chosen, and it loaded.
  const chosenRow = page.locator(`[data-testid=env-backends-table] tr[data-backend="${chosen}"]`);
  await expect(chosenRow).toContainText('chosen');
  await expect(chosenRow).toContainText('yes');
  await expect(page.getByTestId('env-platform')).toContainText(process.platform);
  await expect(page.getByTestId('env-ort-table')).toContainText('cpu');
  // The chart was drawn (a canvas with pixels, not an empty box).
  const canvas = page.getByTestId('env-chart').locator('canvas');
  await expect(canvas).toBeVisible();
  const painted = await canvas.evaluate((el) => {
    // Typed by hand: this file is checked without the DOM library.
    const c = el as unknown as { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null };
    const ctx = c.getContext('2d');
    if (!ctx) return 0;
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
  expect(painted).toBeGreaterThan(100);

  // A reload reads the same report back from the backend (env.lastReport).
  await page.reload();
  await expect(page.getByTestId('env-gflops')).toHaveText(String(await gflops.textContent()));
  await page.screenshot({ path: join(SHOTS, 'environment.png'), fullPage: true });
  // The dark theme follows the system setting; keep a picture of it too.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.reload();
  await expect(page.getByTestId('env-gflops')).toBeVisible();
  await page.screenshot({ path: join(SHOTS, 'environment-dark.png'), fullPage: true });
});
