/**
 * Browser mode's report printer: headless Chromium opens this server's own report route
 * (with the session token, so it passes the same checks as any browser) and prints it.
 * `nmlab serve` installs it on the backend for the Reports page's "Export PDF"; `nmlab report`
 * uses it directly.
 */
import type { ReportPrinter } from '../core/reports/export';
import { printWithChromium } from '../core/reports/pdf';
import { reportRoute } from '../shared/contract/reports';
import type { RunningServer } from './index';

/** The printable URL of a report on `server`: `…/?token=…#/print/report?project=…`. */
export function reportUrl(server: Pick<RunningServer, 'url'>, query: Parameters<ReportPrinter>[0]): string {
  return `${server.url}#${reportRoute(query)}`;
}

export function chromiumReportPrinter(server: Pick<RunningServer, 'url'>, opts: { executablePath?: string; timeoutMs?: number } = {}): ReportPrinter {
  return (query) => printWithChromium({ url: reportUrl(server, query), ...opts });
}
