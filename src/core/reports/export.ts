/**
 * Saving a printed report into the project (`reports/<name>.pdf`, written atomically). The
 * printer is the entry point's: Electron's printToPDF in the app, headless Chromium in
 * browser mode and the CLI; both print the same route.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportExport, ReportExportInput, ReportQuery } from '../../shared/contract/reports';
import { NmlabError } from '../../shared/errors';
import { writeFileAtomic } from '../fs/atomic';
import { resolveInside } from '../projects/resolveInside';

/** Print the report of `query` and return the PDF bytes. */
export type ReportPrinter = (query: ReportQuery) => Promise<Uint8Array>;

export const REPORTS_FOLDER = 'reports';

/** `project-20261127-203000.pdf` or `<experiment>-20261127-203000.pdf` (UTC). */
export function defaultReportName(query: ReportQuery, now = new Date()): string {
  const t = now.toISOString();
  const stamp = `${t.slice(0, 4)}${t.slice(5, 7)}${t.slice(8, 10)}-${t.slice(11, 13)}${t.slice(14, 16)}${t.slice(17, 19)}`;
  return `${query.experimentId ?? 'project'}-${stamp}.pdf`;
}

/** Check the bytes are a PDF (a printer that returns an error page must not be saved as one). */
export function assertPdf(bytes: Uint8Array, what: string): void {
  const head = Buffer.from(bytes.subarray(0, 5)).toString('latin1');
  if (head !== '%PDF-') throw new NmlabError('INTERNAL', `${what} did not produce a PDF (it starts with ${JSON.stringify(head)})`);
}

/** Print and save into `<project>/reports/`; returns where and how big. */
export async function exportReport(input: ReportExportInput, printer: ReportPrinter): Promise<ReportExport> {
  const t0 = performance.now();
  const query: ReportQuery = { projectDir: input.projectDir, experimentId: input.experimentId };
  const bytes = await printer(query);
  assertPdf(bytes, 'the report printer');
  const dir = await resolveInside(input.projectDir, REPORTS_FOLDER);
  await mkdir(dir, { recursive: true });
  const file = join(dir, input.fileName ?? defaultReportName(query));
  await writeFileAtomic(file, bytes);
  return { path: file, bytes: bytes.length, seconds: (performance.now() - t0) / 1000 };
}
