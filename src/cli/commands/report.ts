/**
 * `nmlab report`: the report of a project or one experiment as a PDF, printed from the same
 * template as the app's "Export PDF" (the renderer's print route) through headless Chromium.
 * The built renderer is served in-process by browser mode's server on a random localhost port
 * with a fresh token; Chromium opens the report route, waits until every chart is drawn,
 * and prints.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { printJson, requireOpt, stringOpt, UsageError, type Command } from '../command';
import { createLabBackend } from '../../core/backend';
import { writeFileAtomic } from '../../core/fs/atomic';
import { assertPdf, defaultReportName, REPORTS_FOLDER } from '../../core/reports/export';
import { gatherReport } from '../../core/reports/gather';
import { findChromium, printWithChromium } from '../../core/reports/pdf';
import { ExperimentId } from '../../shared/contract/experiments';
import { startServer } from '../../server/index';
import { reportUrl } from '../../server/report';
import { rendererDir } from '../../server/run';

const USAGE = `Usage: nmlab report --project DIR [--experiment ID] [--out R.pdf] [--json]

Writes the report of a project (every result in it: the demo study, each experiment) or of
one experiment: environment, datasets and backbones with their noise provenance, methods and
hyper-parameters, comparison tables (mean ± std over seeds), charts (accuracy, SVE and LSVR
against γ, spectra on a log scale) and every run in an appendix. The PDF is the one the app's
Reports page exports: the same template, printed by headless Chromium.

Options:
  --project DIR     the project folder
  --experiment ID   report on this experiment only
  --out FILE        where to write the PDF (default DIR/reports/<experiment|project>-<time>.pdf)
  --json            print {file, bytes, pages, seconds, report} (report: the gathered document)

Needs Chromium or Google Chrome (NMLAB_CHROMIUM names one) and the built app pages
(\`npm run build:app\`; NMLAB_RENDERER_DIR names another build).
`;

/** Pages of a PDF Chromium wrote (its page objects are not compressed into object streams). */
export function countPdfPages(bytes: Uint8Array): number | null {
  const n = (Buffer.from(bytes).toString('latin1').match(/\/Type\s*\/Page(?![A-Za-z])/g) ?? []).length;
  return n > 0 ? n : null;
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'write the PDF report of a project or an experiment (headless Chromium)',
  usage: USAGE,
  options: { project: { type: 'string' }, experiment: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } },
  async run(args, io) {
    const t0 = performance.now();
    const projectDir = resolve(requireOpt(args, 'project'));
    const experimentId = stringOpt(args, 'experiment');
    if (experimentId !== undefined && !ExperimentId.safeParse(experimentId).success) throw new UsageError(`--experiment "${experimentId}" is not an experiment id (see \`nmlab experiment list --project DIR\`)`);
    const query = { projectDir, experimentId };
    // Gather first: a wrong folder or experiment fails here, before any browser starts.
    const report = await gatherReport(query);
    const executablePath = findChromium();
    const pages = rendererDir();
    const out = resolve(stringOpt(args, 'out') ?? join(projectDir, REPORTS_FOLDER, defaultReportName(query)));

    const backend = createLabBackend();
    let bytes: Uint8Array;
    try {
      const server = await startServer({ rendererDir: pages, backend, port: 0 });
      try {
        if (!args.values.json) io.err(`nmlab report: printing ${report.title} (${report.sections.length} section(s), ${report.runs.length} runs) with ${executablePath}\n`);
        bytes = await printWithChromium({ url: reportUrl(server, query), executablePath });
      } finally {
        await server.close();
      }
    } finally {
      await backend.dispose();
    }
    assertPdf(bytes, `Chromium (${executablePath})`);
    await mkdir(dirname(out), { recursive: true });
    await writeFileAtomic(out, bytes);
    const result = { file: out, bytes: bytes.length, pages: countPdfPages(bytes), seconds: (performance.now() - t0) / 1000 };
    if (args.values.json) printJson(io, { ...result, report });
    else io.out(`${out}  (${result.pages ?? '?'} pages, ${(bytes.length / 1024).toFixed(0)} KiB, ${result.seconds.toFixed(1)} s)\n`);
    return 0;
  },
};
