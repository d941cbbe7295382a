/**
 * Runs job workers as Electron utility processes (NOTES.md §4): a Node environment outside the
 * main process, so a crash or a native abort in onnxruntime/tfjs ends that job only. Implements
 * the job runner's `WorkerLauncher`, the same shape `child_process.fork` has in the CLI.
 */
import { utilityProcess } from 'electron';
import type { WorkerHandle, WorkerLauncher } from '../core/jobs/launcher';

/** Forward a worker's stdout/stderr, one prefixed line at a time, to the main process's stderr. */
function pipeLines(stream: NodeJS.ReadableStream | null, prefix: string): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) process.stderr.write(`${prefix} ${line}\n`);
  });
  stream.on('end', () => {
    if (pending) process.stderr.write(`${prefix} ${pending}\n`);
  });
}

/** `utilityProcess.fork` launcher; call only after `app.whenReady()` (earlier forks crashed, electron#44461). */
export const utilityProcessLauncher: WorkerLauncher = (entry): WorkerHandle => {
  const child = utilityProcess.fork(entry, [], { stdio: 'pipe', serviceName: 'NMLab job' });
  let exited: [number | null, string | null] | null = null;
  const exitCbs: Array<(code: number | null, signal: string | null) => void> = [];
  const finish = (code: number | null, signal: string | null): void => {
    if (exited) return;
    exited = [code, signal];
    for (const cb of exitCbs) cb(code, signal);
  };
  child.once('exit', (code) => finish(code, null));
  child.once('spawn', () => {
    pipeLines(child.stdout, `[job ${child.pid ?? '?'}]`);
    pipeLines(child.stderr, `[job ${child.pid ?? '?'}]`);
  });
  return {
    get pid() {
      return child.pid;
    },
    postMessage: (m) => {
      if (!exited) child.postMessage(m);
    },
    onMessage: (cb) => {
      child.on('message', cb);
    },
    onExit: (cb) => {
      if (exited) cb(...exited);
      else exitCbs.push(cb);
    },
    kill: () => {
      if (!exited) child.kill();
    },
  };
};
