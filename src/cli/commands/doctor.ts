/**
 * `nmlab doctor [--json] [--size N]`: runs the doctor as a real job in a worker process and
 * prints the environment report (DESIGN §3), as a table or as one JSON object.
 */
import { UsageError, numberOpt, printJson, type CliIO, type Command } from '../command';
import { createLabBackend } from '../../core/backend';
import { EnvironmentReport } from '../../shared/contract/environment';
import { NmlabError } from '../../shared/errors';

const USAGE = `Usage: nmlab doctor [--json] [--size N]

Runs the environment check in a worker process: platform, Node/Electron versions, which
TensorFlow.js backends load (and which is chosen; NMLAB_TF_BACKEND forces one), onnxruntime-node's
version and execution providers (each probed, with a measured N×N MatMul rate in GFLOP/s where it
works, and the one every session uses; NMLAB_EP forces one), and a measured N×N float32 matmul
rate on the chosen TensorFlow.js backend.

Options:
  --size N   matrix side for the matmul timing (16..4096, default 512)
  --json     print the report as one JSON object
`;

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check the environment and measure matmul GFLOP/s',
  usage: USAGE,
  options: { json: { type: 'boolean' }, size: { type: 'string' } },
  async run(args, io) {
    const size = numberOpt(args, 'size') ?? 512;
    if (!Number.isInteger(size) || size < 16 || size > 4096) throw new UsageError(`--size must be an integer from 16 to 4096, got ${size}`);
    const json = args.values.json === true;

    const backend = createLabBackend({ maxConcurrentJobs: 1 });
    try {
      const job = backend.jobs.start({ kind: 'doctor', matmulSize: size });
      const stop = backend.onEvent('job', (e) => {
        // Progress goes to stderr so stdout stays the report alone.
        if (e.type === 'progress' && e.jobId === job.id && e.progress.message && e.progress.done < e.progress.total && !json) io.err(`  ${e.progress.message}...\n`);
        if (e.type === 'log' && e.jobId === job.id && e.level !== 'info') io.err(`  [${e.level}] ${e.message}\n`);
      });
      const final = await backend.jobs.wait(job.id);
      stop();
      if (final.state !== 'succeeded') {
        throw new NmlabError('JOB_FAILED', `the doctor job ${final.state}: ${final.error?.message ?? 'no reason given'}`);
      }
      const report = EnvironmentReport.parse(final.result);
      if (json) printJson(io, report);
      else printReport(io, report);
      return 0;
    } finally {
      await backend.dispose();
    }
  },
};

function printReport(io: CliIO, r: EnvironmentReport): void {
  const row = (label: string, value: string) => io.out(`  ${label.padEnd(13)}${value}\n`);
  io.out('NMLab environment\n');
  row('platform', `${r.platform} ${r.arch}, ${r.cpus} CPUs (${r.cpuModel}), ${r.totalMemoryGiB} GiB`);
  row('node', r.versions.node);
  row('electron', r.versions.electron ?? '- (not running under Electron)');
  row('nmlab', r.versions.nmlab);
  row('tfjs', `${r.versions.tfjs}, chosen backend: ${r.tfjs.chosen}${r.tfjs.forced ? ' (forced by NMLAB_TF_BACKEND)' : ''}`);
  const width = Math.max(...r.tfjs.backends.map((b) => b.name.length));
  for (const b of r.tfjs.backends) {
    row('', `  ${b.name.padEnd(width)}  ${b.loaded ? 'yes' : 'no '}  ${b.detail}${b.name === r.tfjs.chosen ? '  <- chosen' : ''}`);
  }
  row('onnxruntime', `${r.versions.onnxruntime ?? 'not installed'}: ${r.onnxruntime.detail}`);
  if (r.onnxruntime.executionProviders.length) {
    row('', `  in this build: ${r.onnxruntime.executionProviders.map((p) => `${p.name}${p.bundled ? '' : ' (not bundled)'}`).join(', ')}`);
  }
  const epWidth = Math.max(0, ...r.onnxruntime.providers.map((p) => p.name.length));
  for (const p of r.onnxruntime.providers) {
    const rate = p.gflops === null ? '' : `${p.gflops.toFixed(2)} GFLOP/s  `;
    const mark = p.name === r.onnxruntime.chosen ? `  <- chosen${r.onnxruntime.forced ? ' (forced by NMLAB_EP)' : ''}` : '';
    row('', `  ${p.name.padEnd(epWidth)}  ${p.available ? 'yes' : 'no '}  ${rate}${p.available ? '' : p.detail}${mark}`);
  }
  const m = r.matmul;
  const reps = m.repetitions !== undefined ? `${m.repetitions} repetitions, ` : '';
  row('matmul', `${m.size}×${m.size} float32 on ${m.backend}: ${m.gflops.toFixed(2)} GFLOP/s (${reps}${m.seconds.toFixed(3)} s timed)`);
}
