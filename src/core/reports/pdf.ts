/**
 * Prints the report route to PDF with headless Chromium (playwright-core driving the system's
 * Chromium; NOTES.md §5): open the page, wait until it says every chart is drawn and the fonts
 * are loaded (`window.__reportReady`), then `page.pdf()` with the options Electron's
 * `printToPDF` uses too ({@link REPORT_PDF}). Used by `nmlab report` and by browser mode's
 * "Export PDF".
 */
import { existsSync } from 'node:fs';
import { REPORT_PDF } from '../../shared/contract/reports';
import { NmlabError } from '../../shared/errors';

/** Where Chromium is looked for when NMLAB_CHROMIUM is not set, in this order. */
const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe',
];

/** The Chromium to print with: `$NMLAB_CHROMIUM`, else the first installed candidate. Throws with what to install. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string {
  const forced = env.NMLAB_CHROMIUM;
  if (forced) {
    if (!existsSync(forced)) throw new NmlabError('BACKEND_UNAVAILABLE', `NMLAB_CHROMIUM is set to ${forced}, but there is no such file; point it at a Chromium or Chrome executable`);
    return forced;
  }
  const found = CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new NmlabError(
      'BACKEND_UNAVAILABLE',
      `printing a report needs Chromium or Google Chrome, and none was found (looked at ${CANDIDATES.join(', ')}). ` +
        'Install it (Debian/Ubuntu: `sudo apt install chromium`; Fedora: `sudo dnf install chromium`; macOS/Windows: Google Chrome), ' +
        'or set NMLAB_CHROMIUM to the path of its executable.',
    );
  }
  return found;
}

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

export interface PrintOptions {
  /** The report route, fully formed (server URL with token, then `#/print/report?…`). */
  url: string;
  executablePath?: string;
  /** Longest wait for the page to be ready (default 120 s). */
  timeoutMs?: number;
}

/** Open `url` in headless Chromium, wait for `__reportReady`, return the PDF bytes. */
export async function printWithChromium(opts: PrintOptions): Promise<Uint8Array> {
  const executablePath = opts.executablePath ?? findChromium();
  const timeout = opts.timeoutMs ?? 120_000;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS }).catch((err: unknown) => {
    throw new NmlabError('BACKEND_UNAVAILABLE', `could not start Chromium at ${executablePath}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  });
  try {
    // 794 px ≈ 210 mm at 96 dpi: the screen layout matches the page the template is drawn for.
    const page = await browser.newPage({ viewport: { width: 794, height: 1123 }, deviceScaleFactor: 2, colorScheme: 'light' });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(opts.url, { waitUntil: 'load', timeout });
    const state = await page
      .waitForFunction(
        // Runs in the page, passed as a function (the page's CSP forbids evaluating strings);
        // `globalThis` is the page's window there, and core has no DOM types.
        () => {
          const w = globalThis as unknown as { __reportReady?: boolean; __reportError?: string };
          return w.__reportReady === true ? 'ready' : typeof w.__reportError === 'string' ? `error: ${w.__reportError}` : false;
        },
        undefined,
        { timeout, polling: 100 },
      )
      .then((h) => h.jsonValue())
      .catch((err: unknown) => {
        const why = pageErrors.length ? ` (page errors: ${pageErrors.join('; ')})` : '';
        throw new NmlabError('JOB_FAILED', `the report page did not finish drawing within ${timeout / 1000} s${why}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      });
    if (state !== 'ready') throw new NmlabError('JOB_FAILED', `the report page failed: ${String(state).replace(/^error: /, '')}`);
    await page.emulateMedia({ media: 'print' });
    const pdf = await page.pdf({
      format: REPORT_PDF.format,
      printBackground: REPORT_PDF.printBackground,
      preferCSSPageSize: REPORT_PDF.preferCSSPageSize,
      displayHeaderFooter: REPORT_PDF.displayHeaderFooter,
      headerTemplate: REPORT_PDF.headerTemplate,
      footerTemplate: REPORT_PDF.footerTemplate,
      outline: true,
      tagged: true,
    });
    return new Uint8Array(pdf);
  } finally {
    await browser.close();
  }
}
