/**
 * The handshake with the printers: the print route sets `window.__reportReady` once the
 * document is loaded, every chart is drawn and the fonts are ready; Electron polls it with
 * `executeJavaScript`, headless Chromium with `waitForFunction`. A failure sets
 * `window.__reportError` so they stop waiting and say why.
 */
declare global {
  interface Window {
    __reportReady?: boolean;
    __reportError?: string;
  }
}

const frame = (): Promise<void> => new Promise((r) => requestAnimationFrame(() => r()));

/** Wait for the fonts and two frames (layout and paint of the last chart), then say ready. */
export async function markReportReady(): Promise<void> {
  await document.fonts.ready;
  await frame();
  await frame();
  window.__reportReady = true;
}

export function markReportFailed(message: string): void {
  window.__reportError = message;
}
