/**
 * Run browser mode until the process is told to stop: resolve the built renderer, build the
 * lab backend, start the server, print the URL, and on SIGINT/SIGTERM close the server and
 * stop every job. Shared by `nmlab serve` and `node out/node/server.mjs`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createLabBackend } from '../core/backend';
import { appRoot } from '../core/paths';
import { NmlabError } from '../shared/errors';
import { startServer } from './index';
import { chromiumReportPrinter } from './report';

/** The built renderer: `$NMLAB_RENDERER_DIR`, else `out/renderer` of this install. */
export function rendererDir(): string {
  const dir = process.env.NMLAB_RENDERER_DIR || join(appRoot(), 'out', 'renderer');
  if (!existsSync(join(dir, 'index.html'))) {
    throw new NmlabError('NOT_FOUND', `the app's pages are not built: ${join(dir, 'index.html')} is missing; run \`npm run build:app\``);
  }
  return dir;
}

export interface ServeOptions {
  host: string;
  port: number;
  /** Print one JSON line `{url, host, port, token}` instead of prose. */
  json: boolean;
  out: (text: string) => void;
  err: (text: string) => void;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Resolves once the server has been stopped by a signal. */
export async function serveUntilSignal(opts: ServeOptions): Promise<void> {
  const dir = rendererDir();
  const backend = createLabBackend();
  const server = await startServer({ host: opts.host, port: opts.port, rendererDir: dir, backend, log: (line) => opts.err(`nmlab serve: ${line}\n`) }).catch(async (err: unknown) => {
    await backend.dispose();
    throw err;
  });
  // "Export PDF" on the Reports page prints this server's own report route.
  backend.setReportPrinter(chromiumReportPrinter(server));
  if (opts.json) {
    // One line, so a parent process can read it as soon as it arrives.
    opts.out(JSON.stringify({ url: server.url, host: server.host, port: server.port, token: server.token }) + '\n');
  } else {
    opts.out(`NMLab is serving at\n\n  ${server.url}\n\nOpen that URL in a browser (the token in it is required). Ctrl-C stops the server.\n`);
  }
  if (!LOOPBACK.has(opts.host)) {
    opts.err(`nmlab serve: warning: bound to ${opts.host}; anyone who can reach it and has the token can use this lab\n`);
  }
  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolveStop();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  await backend.dispose();
}
