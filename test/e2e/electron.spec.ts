/**
 * The desktop app through Playwright's Electron support (experimental). Runs only where an
 * Electron binary is installed (`npm run fetch-optional`); elsewhere every test reports a skip
 * with the reason. Needs `npm run build` first (out/main, out/preload, out/renderer, out/node).
 */
import { _electron as electron, expect, test, type ElectronApplication, type Page } from '@playwright/test';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NmlabBridge } from '../../src/shared/contract/shell';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** What the tests touch of the page's globals (this file is type-checked without the DOM library). */
interface PageGlobals {
  nmlab?: NmlabBridge;
  location: { href: string };
}

/** The Electron executable, or why there is none. */
function findElectron(): { path: string } | { missing: string } {
  try {
    // electron/index.js exports the binary's path and throws when it was never downloaded.
    const path: unknown = createRequire(join(root, 'package.json'))('electron');
    return typeof path === 'string' ? { path } : { missing: 'the electron package did not return a path' };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    // electron/index.js says "failed to install correctly" when its download step never ran.
    return { missing: /failed to install correctly/.test(message) ? 'node_modules/electron has no downloaded runtime (its install script is denied by allowScripts and needs network)' : message };
  }
}

const found = findElectron();
const skipReason = 'missing' in found ? `Electron binary not installed: ${found.missing}; run npm run fetch-optional` : '';
test.skip(skipReason !== '', skipReason);
// The list reporter shows skipped tests without their reason; say it once, plainly.
if (skipReason) console.log(`electron.spec.ts: skipping the desktop-app tests. ${skipReason}`);

test.describe.configure({ mode: 'serial' });

let app: ElectronApplication;
let page: Page;
let work: string;

test.beforeAll(async () => {
  if (!('path' in found)) return;
  work = await mkdtemp(join(tmpdir(), 'nmlab-electron-'));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'ELECTRON_RUN_AS_NODE') env[k] = v;
  env.NMLAB_HOME = join(work, 'home');
  app = await electron.launch({
    executablePath: found.path,
    cwd: root,
    // Chromium's own sandbox needs user namespaces that CI containers often lack; the
    // renderer's Electron sandbox (webPreferences.sandbox) is still on.
    args: [...(process.env.CI ? ['--no-sandbox'] : []), '.'],
    env,
  });
  page = await app.firstWindow();
});

test.afterAll(async () => {
  await app?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

test('the window is sandboxed and exposes only the narrow nmlab bridge', async () => {
  await expect(page.getByTestId('connection')).toContainText('Desktop');
  const exposed = await page.evaluate(() => ({
    bridge: Object.keys((globalThis as unknown as PageGlobals).nmlab ?? {}).sort(),
    require: typeof (globalThis as { require?: unknown }).require,
    process: typeof (globalThis as { process?: unknown }).process,
  }));
  expect(exposed).toEqual({ bridge: ['invoke', 'on'], require: 'undefined', process: 'undefined' });
  const refused = await page.evaluate(() =>
    (globalThis as unknown as PageGlobals).nmlab!.invoke('nmlab:notAService.method', {}).then(
      () => 'answered',
      (e: Error) => e.message,
    ),
  );
  expect(refused).toContain('not an API channel');
});

test('navigation away from the app is blocked', async () => {
  const before = page.url();
  await page.evaluate(() => {
    (globalThis as unknown as PageGlobals).location.href = 'https://example.com/';
  });
  await page.waitForTimeout(500);
  expect(page.url()).toBe(before);
});

test('a project created through the folder dialog is on disk and listed after a reload', async () => {
  const dir = join(work, 'projects', 'desktop-study');
  // Stub the native dialog: Playwright cannot click OS dialogs.
  await app.evaluate(({ dialog }, picked) => {
    dialog.showOpenDialog = (async () => ({ canceled: false, filePaths: [picked] })) as typeof dialog.showOpenDialog;
  }, dir);
  await page.getByTestId('nav-projects').click();
  await page.getByTestId('new-project-browse').click();
  await expect(page.getByTestId('new-project-dir')).toHaveValue(dir);
  await page.getByTestId('new-project-name').fill('Desktop study');
  await page.getByTestId('new-project-create').click();
  await expect(page.getByTestId('current-project-name')).toHaveText('Desktop study');
  const manifest = JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')) as { name: string };
  expect(manifest.name).toBe('Desktop study');
  await page.reload();
  await expect(page.locator(`[data-testid=recent-row][data-dir="${dir}"]`)).toContainText('Desktop study');
});

test('the doctor runs in a utility process and reports the Electron version', async () => {
  await page.getByTestId('nav-environment').click();
  await page.getByTestId('env-run').click();
  await expect(page.getByTestId('env-gflops')).toBeVisible({ timeout: 150_000 });
  expect(Number(await page.getByTestId('env-gflops').textContent())).toBeGreaterThan(0);
  const electronVersion = await app.evaluate(() => process.versions.electron);
  await expect(page.getByTestId('env-versions')).toContainText(electronVersion);
  await page.screenshot({ path: join(root, 'test-results', 'screenshots', 'electron-environment.png'), fullPage: true });
});
