/** Reports (issue 6): gather a project's or an experiment's results into one document, print it, save it. */
export { gatherReport, type GatherOptions } from './gather';
export { exportReport, defaultReportName, assertPdf, REPORTS_FOLDER, type ReportPrinter } from './export';
export { printWithChromium, findChromium, CHROMIUM_ARGS, type PrintOptions } from './pdf';
