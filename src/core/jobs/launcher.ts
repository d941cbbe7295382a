/**
 * How the runner starts a worker process. The runner only sees `WorkerHandle`; the CLI and the
 * server use `forkLauncher` (child_process.fork), and Electron's main process supplies a
 * launcher over `utilityProcess.fork` with the same shape (DESIGN §2: one worker per job).
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { appRoot } from '../paths';
import { NmlabError } from '../../shared/errors';

/** A running worker process, whatever started it. */
export interface WorkerHandle {
  /** OS process id, when the launcher knows it (used to check a killed worker is gone). */
  readonly pid?: number;
  postMessage(m: unknown): void;
  onMessage(cb: (m: unknown) => void): void;
  /** Called once when the process has ended; `signal` is null when it exited by itself. */
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  /** Force the process to end (SIGKILL or the platform's equivalent). */
  kill(): void;
}

/** Starts the worker script at `entry` (an absolute path) in a new process. */
export type WorkerLauncher = (entry: string) => WorkerHandle;

/**
 * The worker entry to run. Sources run sources, builds run builds: when this module is itself
 * a `.ts` file (tests, `tsx` dev runs) the worker is `src/core/jobs/worker.ts`, run through tsx;
 * otherwise it is the bundled `out/node/worker.mjs` made by `npm run build:node`.
 * `NMLAB_WORKER_ENTRY` overrides both.
 */
export function resolveWorkerEntry(): string {
  const override = process.env.NMLAB_WORKER_ENTRY;
  if (override) return override;
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return join(appRoot(), 'src', 'core', 'jobs', 'worker.ts');
  const built = join(appRoot(), 'out', 'node', 'worker.mjs');
  if (!existsSync(built)) {
    throw new NmlabError('NOT_FOUND', `the job worker ${built} is missing; run \`npm run build:node\``);
  }
  return built;
}

/** Node flags needed to run `entry`: a TypeScript entry is loaded through tsx. */
export function workerExecArgv(entry: string): string[] {
  if (!entry.endsWith('.ts')) return [];
  // Resolve tsx from NMLab's own node_modules so it works whatever the working directory.
  const tsx = createRequire(join(appRoot(), 'package.json')).resolve('tsx');
  return ['--import', pathToFileURL(tsx).href];
}

/**
 * The worker's environment: ours, minus vitest's markers. A worker started from a test runs
 * in plain Node, not under vitest's module transform; nothing should believe otherwise.
 */
export function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('VITEST')));
}

/** `child_process.fork` launcher: the default outside Electron. */
export const forkLauncher: WorkerLauncher = (entry) => {
  const child = fork(entry, [], {
    execArgv: workerExecArgv(entry),
    env: workerEnv(process.env),
    // A worker's stray output (and a crash trace) goes to our stderr, never our stdout, so
    // `nmlab ... --json` stays one clean JSON document.
    stdio: ['ignore', 2, 2, 'ipc'],
    serialization: 'advanced',
  });
  let exited: [number | null, string | null] | null = null;
  const exitCbs: Array<(code: number | null, signal: string | null) => void> = [];
  const finish = (code: number | null, signal: string | null) => {
    if (exited) return;
    exited = [code, signal];
    for (const cb of exitCbs) cb(code, signal);
  };
  child.once('exit', finish);
  // A process that could not be spawned emits 'error' and never 'exit'.
  child.on('error', () => {
    if (child.pid === undefined) finish(null, null);
  });
  return {
    pid: child.pid,
    postMessage: (m) => {
      if (child.connected) child.send(m as object);
    },
    onMessage: (cb) => {
      child.on('message', cb);
    },
    onExit: (cb) => {
      if (exited) cb(...exited);
      else exitCbs.push(cb);
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
};
