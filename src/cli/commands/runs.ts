/** `nmlab runs list|show`: the runs of a project (what the Run views show), as text or JSON. */
import { UsageError, printJson, requireOpt, stringOpt, type Command } from '../command';
import { listRuns, readRunDetail } from '../../core/runs/store';

const USAGE = `Usage:
  nmlab runs list --project DIR [--experiment ID] [--json]   every run: id, status, accuracy
  nmlab runs show RUN --project DIR [--json]                 config, result, metrics and log of one run
`;

const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(2)} %`);

export const runsCommand: Command = {
  name: 'runs',
  summary: 'list runs of a project, or show one',
  usage: USAGE,
  options: { project: { type: 'string' }, experiment: { type: 'string' }, json: { type: 'boolean' } },
  allowPositionals: true,
  async run(args, io) {
    const [sub, id, ...extra] = args.positionals;
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const projectDir = requireOpt(args, 'project');
    const json = args.values.json === true;
    if (sub === 'list') {
      if (id) throw new UsageError('runs list takes no run id');
      const runs = await listRuns(projectDir, stringOpt(args, 'experiment'));
      if (json) printJson(io, runs);
      else if (runs.length === 0) io.out('no runs in this project\n');
      else {
        const w = Math.max(...runs.map((r) => r.id.length));
        for (const r of runs) io.out(`${r.id.padEnd(w)}  ${r.status.padEnd(11)}  acc ${pct(r.accuracy).padStart(8)}  ood ${pct(r.oodAccuracy).padStart(8)}  ${r.jobKey ?? ''}\n`);
      }
      return 0;
    }
    if (sub === 'show') {
      if (!id) throw new UsageError('runs show needs a run id');
      const d = await readRunDetail(projectDir, id);
      if (json) {
        printJson(io, d);
        return 0;
      }
      io.out(`run ${d.summary.id} (${d.summary.kind}) — ${d.summary.status}${d.summary.error ? `: ${d.summary.error}` : ''}\n`);
      io.out(`job ${d.summary.jobKey ?? '—'} of experiment ${d.summary.experimentId ?? '—'}, attempt ${d.summary.attempt}\n`);
      if (d.resultError) io.out(`result: ${d.resultError}\n`);
      if (d.result) {
        const r = d.result;
        if ('legacy' in r) io.out(`legacy result (recorded before presets, engines and preprocessed spectra): SVE/LSVR of Z as it is; preset ${r.preset ?? 'not recorded'}, engine ${r.engine ?? 'not recorded'}\n`);
        if (r.test) io.out(`test: accuracy ${pct(r.test.accuracy)}, macro-F1 ${pct(r.test.macroF1)}, SVE ${r.test.sve.toFixed(4)}, LSVR ${r.test.lsvr.toFixed(4)}\n`);
        for (const t of r.targets) io.out(`target ${t.name}: accuracy ${pct(t.accuracy)}, LSVR ${t.lsvr.toFixed(4)}\n`);
        io.out(`backbone features: SVE ${r.backboneSve.toFixed(4)}, LSVR ${r.backboneLsvr.toFixed(4)}; ${r.epochs} epochs in ${r.seconds.toFixed(2)} s on ${r.backend}\n`);
      }
      const series = new Map<string, number>();
      for (const p of d.metrics) series.set(p.series, (series.get(p.series) ?? 0) + 1);
      io.out(`metrics: ${[...series].map(([s, n]) => `${s} ×${n}`).join(', ') || 'none'}\n`);
      return 0;
    }
    throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is required');
  },
};
