/**
 * The worker process entry: one job per process (DESIGN §2). It talks to its parent over
 * `child_process` IPC (`process.send`) or, under Electron's utilityProcess, over
 * `process.parentPort`; the messages are the union in `protocol.ts`.
 *
 * Sequence: send `ready`; receive `start`; run the kind; send progress/metric/log while it
 * runs; send exactly one `done` or `error`; exit. A `cancel` aborts the job's signal.
 */
// First: a terminal's Ctrl-C reaches this process too; the parent decides what it means.
import './ignoreSigint';
import { format } from 'node:util';
import { jobKinds, type JobContext } from './kinds/index';
import { isParentMessage, type WorkerMessage, type ParentMessage } from './protocol';
import { NmlabError, serializeError } from '../../shared/errors';
// An fs error that escaped a job names its path, as on the command line (src/core/fs/errors.ts).
import { describeEscapedError } from '../fs/errors';
import type { JobSpec } from '../../shared/contract/jobs';

/** The part of Electron's utilityProcess `process.parentPort` we use (Electron types are not a core dependency). */
interface ParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
}

interface Channel {
  send(m: WorkerMessage): void;
  /** Send the last message, then end the process once it has been handed to the OS. */
  sendAndExit(m: WorkerMessage, code: number): void;
  onMessage(cb: (m: unknown) => void): void;
}

function openChannel(): Channel {
  const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;
  if (parentPort) {
    return {
      send: (m) => parentPort.postMessage(m),
      // parentPort has no delivery callback; give the port a moment to flush before exiting.
      sendAndExit: (m, code) => {
        parentPort.postMessage(m);
        setTimeout(() => process.exit(code), 100);
      },
      onMessage: (cb) => parentPort.on('message', (e) => cb(e.data)),
    };
  }
  if (!process.send) {
    process.stderr.write('nmlab worker: no parent channel; this file is started by the job runner, not by hand\n');
    process.exit(2);
  }
  return {
    send: (m) => {
      process.send?.(m);
    },
    sendAndExit: (m, code) => {
      process.send?.(m, undefined, {}, () => process.exit(code));
    },
    onMessage: (cb) => {
      process.on('message', cb);
    },
  };
}

const channel = openChannel();
const abort = new AbortController();
let started = false;

// Console output from libraries (e.g. tfjs's "Hi there" banner) becomes job log lines.
for (const [method, level] of [['log', 'info'], ['info', 'info'], ['warn', 'warn'], ['error', 'error']] as const) {
  console[method] = (...args: unknown[]) => channel.send({ type: 'log', level, message: format(...args) });
}

const PROGRESS_INTERVAL_MS = 50;

/**
 * Progress is throttled to ~20 messages a second so a tight loop cannot flood the channel;
 * the first and the final report always go through, and a throttled report is sent at the end
 * of its window so the UI never stays behind.
 */
function makeContext(jobId: string): JobContext {
  let lastSent = 0;
  let trailing: NodeJS.Timeout | null = null;
  let latest: { progress: { done: number; total: number; message?: string }; at: number } | null = null;
  const flush = () => {
    if (trailing) clearTimeout(trailing);
    trailing = null;
    if (!latest) return;
    lastSent = Date.now();
    channel.send({ type: 'progress', ...latest });
    latest = null;
  };
  return {
    jobId,
    signal: abort.signal,
    progress(done, total, message) {
      latest = { progress: message === undefined ? { done, total } : { done, total, message }, at: Date.now() };
      const wait = lastSent + PROGRESS_INTERVAL_MS - Date.now();
      if (done === 0 || done >= total || wait <= 0) flush();
      else trailing ??= setTimeout(flush, wait);
    },
    metric(name, step, values) {
      channel.send({ type: 'metric', name, step, values });
    },
    log(level, message) {
      channel.send({ type: 'log', level, message });
    },
  };
}

async function runJob(jobId: string, spec: JobSpec): Promise<void> {
  try {
    const load = jobKinds[spec.kind] as (() => Promise<{ run: (s: JobSpec, c: JobContext) => Promise<unknown> }>) | undefined;
    if (!load) throw new NmlabError('UNSUPPORTED', `this worker has no job kind "${spec.kind}"`);
    const kind = await load();
    const result = await kind.run(spec, makeContext(jobId));
    channel.sendAndExit({ type: 'done', result: result ?? null }, 0);
  } catch (err) {
    channel.sendAndExit({ type: 'error', error: serializeError(describeEscapedError(err)) }, 0);
  }
}

// A throw from a callback the job did not await still ends the job with its message rather
// than as an anonymous crash.
process.on('uncaughtException', (err) => channel.sendAndExit({ type: 'error', error: serializeError(describeEscapedError(err)) }, 1));
process.on('unhandledRejection', (err) => channel.sendAndExit({ type: 'error', error: serializeError(describeEscapedError(err)) }, 1));

channel.onMessage((m: unknown) => {
  if (!isParentMessage(m)) return;
  const msg: ParentMessage = m;
  if (msg.type === 'cancel') {
    abort.abort();
    return;
  }
  if (started) return;
  started = true;
  // The runner's share of the cores; a user's NMLAB_ORT_THREADS (inherited) wins.
  if (msg.threads !== undefined && !process.env.NMLAB_ORT_THREADS) process.env.NMLAB_ORT_THREADS = String(msg.threads);
  void runJob(msg.jobId, msg.spec);
});

channel.send({ type: 'ready', pid: process.pid });
