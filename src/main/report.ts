/**
 * The desktop app's report printer (issue 6): a hidden window opens the report route of the
 * app's own page, main polls `window.__reportReady` with `executeJavaScript` until every chart
 * is drawn and the fonts are loaded, then `webContents.printToPDF` prints it with the page
 * set-up headless Chromium uses too ({@link REPORT_PDF}). The window has the main window's
 * hardening (sandbox, context isolation, no node) and is destroyed afterwards.
 */
import { BrowserWindow } from 'electron';
import type { ReportPrinter } from '../core/reports/export';
import { REPORT_PDF, reportRoute } from '../shared/contract/reports';
import { NmlabError } from '../shared/errors';

export interface ElectronPrinterOptions {
  /** The app page's URL in production (`app://nmlab/index.html`). */
  appUrl: string;
  /** `electron-vite dev`'s server, when running in development. */
  devServerUrl?: string;
  preload: string;
  /** Longest wait for the page to be ready (default 120 s). */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function electronReportPrinter(opts: ElectronPrinterOptions): ReportPrinter {
  return async (query) => {
    const win = new BrowserWindow({
      show: false,
      // 794 px ≈ 210 mm at 96 dpi, as for headless Chromium.
      width: 794,
      height: 1123,
      webPreferences: { preload: opts.preload, contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, spellcheck: false, devTools: false },
    });
    try {
      const hash = reportRoute(query);
      if (opts.devServerUrl) await win.loadURL(`${opts.devServerUrl}#${hash}`);
      else await win.loadURL(`${opts.appUrl}#${hash}`);
      const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
      for (;;) {
        const state = (await win.webContents.executeJavaScript(
          "window.__reportReady === true ? 'ready' : typeof window.__reportError === 'string' ? 'error: ' + window.__reportError : ''",
          true,
        )) as string;
        if (state === 'ready') break;
        if (state.startsWith('error: ')) throw new NmlabError('JOB_FAILED', `the report page failed: ${state.slice(7)}`);
        if (Date.now() > deadline) throw new NmlabError('JOB_FAILED', `the report page did not finish drawing within ${(opts.timeoutMs ?? 120_000) / 1000} s`);
        await sleep(100);
      }
      const pdf = await win.webContents.printToPDF({
        pageSize: REPORT_PDF.format,
        printBackground: REPORT_PDF.printBackground,
        preferCSSPageSize: REPORT_PDF.preferCSSPageSize,
        displayHeaderFooter: REPORT_PDF.displayHeaderFooter,
        headerTemplate: REPORT_PDF.headerTemplate,
        footerTemplate: REPORT_PDF.footerTemplate,
        generateDocumentOutline: true,
        generateTaggedPDF: true,
      });
      return new Uint8Array(pdf);
    } finally {
      if (!win.isDestroyed()) win.destroy();
    }
  };
}
