/**
 * "Open demo project" end to end in browser mode: the real built server runs the demo study as
 * a job (quick sizes: the server is started with NMLAB_DEMO_QUICK=1, which the job kind reads),
 * the Projects page shows its progress (jobs of the demo study done) and ETA, and the project is
 * open when it ends, with results/demo-results.json on disk and the study in Experiments. A second click opens the finished project at
 * once. Stop cancels a run mid pre-training (nested workers) and starting again resumes it.
 * Screenshots: test-results/screenshots/demo-progress.png and demo.png.
 */
import { expect, test } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SHOTS, useServedLab } from './serve';

// Quick sizes: the server passes this to its job workers, and the demo job kind reads it.
const lab = useServedLab({ NMLAB_DEMO_QUICK: '1' });

test('Open demo project runs the study with progress and opens the project', async ({ page }) => {
  test.setTimeout(900_000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));

  await page.goto(lab.url);
  await expect(page.getByTestId('demo-card')).toBeVisible();
  // Note every state of the progress bar the page shows (percent and text), however briefly.
  await page.evaluate(() => {
    const g = globalThis as unknown as {
      __demo: Array<{ pct: string | null; text: string }>;
      document: { body: unknown; querySelector(s: string): { getAttribute(n: string): string | null; textContent: string | null } | null };
      MutationObserver: new (cb: () => void) => { observe(target: unknown, opts: object): void };
    };
    g.__demo = [];
    new g.MutationObserver(() => {
      const bar = g.document.querySelector('[data-testid=demo-progress]');
      if (!bar) return;
      const state = { pct: bar.getAttribute('aria-valuenow'), text: (bar.textContent ?? '').replace(/\s+/g, ' ').trim() };
      const last = g.__demo[g.__demo.length - 1];
      if (!last || last.pct !== state.pct || last.text !== state.text) g.__demo.push(state);
    }).observe(g.document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });

  // The default folder: <NMLAB_HOME>/demo-project (serveLab sets NMLAB_HOME to work/home).
  const dir = join(lab.work, 'home', 'demo-project');
  await page.getByTestId('demo-open').click();
  await expect(page.getByTestId('demo-progress')).toBeVisible();
  // Past the datasets and into the study's jobs, where the ETA has something to go on.
  await expect(page.getByTestId('demo-progress')).toContainText(/([1-9]|\d\d)\/\d+ jobs/, { timeout: 120_000 });
  await page.screenshot({ path: join(SHOTS, 'demo-progress.png'), fullPage: true });

  await expect(page.getByTestId('demo-opened')).toBeVisible({ timeout: 800_000 });
  await expect(page.getByTestId('demo-error')).toHaveCount(0);
  await expect(page.getByTestId('demo-progress')).toHaveCount(0);
  await expect(page.getByTestId('current-project-dir')).toHaveText(dir);
  await expect(page.getByTestId('demo-opened')).toContainText('Demo study finished');

  const seen = await page.evaluate(() => (globalThis as unknown as { __demo: Array<{ pct: string | null; text: string }> }).__demo);
  const jobTexts = seen.filter((s) => /\d+\/\d+ jobs/.test(s.text));
  expect(jobTexts.length, JSON.stringify(seen.slice(-5))).toBeGreaterThan(2);
  // The count of finished jobs moved through several values, the bar moved, and an ETA was shown.
  expect(new Set(jobTexts.map((s) => /(\d+)\/\d+ jobs/.exec(s.text)?.[1])).size).toBeGreaterThan(2);
  const pcts = seen.map((s) => Number(s.pct)).filter((n) => Number.isFinite(n));
  expect(Math.max(...pcts)).toBeGreaterThan(0);
  expect(seen.some((s) => /about .* left/.test(s.text))).toBe(true);

  // The results are on disk, for the quick preset, in the project that is open.
  const results = JSON.parse(await readFile(join(dir, 'results', 'demo-results.json'), 'utf8')) as {
    preset: string;
    project: string;
    timing: { wallSeconds: number; stages: unknown[] };
  };
  expect(results.preset).toBe('quick');
  expect(results.timing.wallSeconds).toBeGreaterThan(0);
  expect(results.timing.stages.length).toBeGreaterThan(0);
  // The demo is a study: it shows in Experiments.
  await page.getByTestId('demo-to-experiments').click();
  await expect(page.getByTestId('experiment-list')).toBeVisible();
  await page.getByTestId('nav-projects').click();
  const manifest = JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')) as { name: string };
  await expect(page.getByTestId('current-project-name')).toHaveText(manifest.name);
  await page.screenshot({ path: join(SHOTS, 'demo.png'), fullPage: true });

  // Again after a reload: the finished project opens at once, nothing is recomputed.
  await page.getByTestId('close-project').click();
  await expect(page.getByTestId('current-project')).toHaveCount(0);
  await page.reload();
  await page.getByTestId('demo-open').click();
  await expect(page.getByTestId('demo-opened')).toContainText('Opened the finished demo project', { timeout: 30_000 });
  await expect(page.getByTestId('current-project-dir')).toHaveText(dir);
  const again = JSON.parse(await readFile(join(dir, 'results', 'demo-results.json'), 'utf8')) as { timing: { wallSeconds: number } };
  expect(again.timing.wallSeconds).toBe(results.timing.wallSeconds);
  expect(consoleErrors).toEqual([]);
});

test('Stop cancels the study mid pre-training, and starting again resumes it', async ({ page }) => {
  test.setTimeout(900_000);
  const dir = join(lab.work, 'typed', 'my-demo');
  await page.goto(lab.url);
  await page.getByTestId('demo-dir').fill(dir);
  await page.getByTestId('demo-open').click();
  // Pre-training runs in nested worker processes; stop while it does.
  await expect(page.getByTestId('demo-progress')).toContainText(/pre-train/, { timeout: 60_000 });
  await page.getByTestId('demo-cancel').click();
  await expect(page.getByTestId('demo-error')).toContainText('Stopped', { timeout: 30_000 });
  await expect(page.getByTestId('demo-progress')).toHaveCount(0);
  await expect(readFile(join(dir, 'results', 'demo-results.json'))).rejects.toThrow();

  await page.getByTestId('demo-open').click();
  await expect(page.getByTestId('demo-opened')).toContainText('Demo study finished', { timeout: 800_000 });
  await expect(page.getByTestId('current-project-dir')).toHaveText(dir);
  const results = JSON.parse(await readFile(join(dir, 'results', 'demo-results.json'), 'utf8')) as { timing: { stages: Array<{ reused: boolean }> } };
  // What finished before the stop was not redone.
  expect(results.timing.stages.filter((s) => s.reused).length).toBeGreaterThan(0);
});
