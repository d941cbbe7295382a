/**
 * `nmlab serve`: browser mode. Serves the built renderer and the lab API over a WebSocket on
 * localhost (DESIGN §2, §7), prints the URL with its token and runs until SIGINT/SIGTERM.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../command';
import { numberOpt, stringOpt, UsageError } from '../command';
import { createLabBackend } from '../../core/backend';
import { appRoot } from '../../core/paths';
import { startServer } from '../../server/index';
import { NmlabError } from '../../shared/errors';

/** The built renderer: `$NMLAB_RENDERER_DIR`, else `out/renderer` of this install. */
export function rendererDir(): string {
  const dir = process.env.NMLAB_RENDERER_DIR || join(appRoot(), 'out', 'renderer');
  if (!existsSync(join(dir, 'index.html'))) {
    throw new NmlabError('NOT_FOUND', `the app's pages are not built: ${join(dir, 'index.html')} is missing; run \`npm run build:app\``);
  }
  return dir;
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Serve the app to a web browser on localhost (browser mode)',
  usage: `Usage: nmlab serve [--host 127.0.0.1] [--port N] [--json]

Serves NMLab's interface and API on http://HOST:PORT. The printed URL carries a random
token; the page and the API refuse requests without it and WebSocket connections from other
origins. On a remote machine, keep the default host and reach it through an SSH tunnel:
  ssh -L 8765:127.0.0.1:8765 gpu-box 'nmlab serve --port 8765'

Options:
  --host H   interface to bind (default 127.0.0.1; binding elsewhere exposes the lab to the network)
  --port N   port to listen on (default 0: a free port is chosen)
  --json     print {"url", "host", "port", "token"} as one JSON line when ready
Stops on Ctrl-C (SIGINT) or SIGTERM.`,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    const host = stringOpt(args, 'host') ?? '127.0.0.1';
    const port = numberOpt(args, 'port') ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be an integer 0..65535, got ${port}`);
    const dir = rendererDir();
    const backend = createLabBackend();
    const server = await startServer({ host, port, rendererDir: dir, backend }).catch((err: unknown) => {
      backend.dispose();
      throw err;
    });
    if (args.values.json) {
      // One line, so a parent process can read it as soon as it arrives.
      io.out(JSON.stringify({ url: server.url, host: server.host, port: server.port, token: server.token }) + '\n');
    } else {
      io.out(`NMLab is serving at\n\n  ${server.url}\n\nOpen that URL in a browser (the token in it is required). Ctrl-C stops the server.\n`);
      if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
        io.err(`nmlab serve: warning: bound to ${host}; anyone who can reach it and has the token can use this lab\n`);
      }
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
    return 0;
  },
};

