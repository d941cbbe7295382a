/**
 * `nmlab serve`: browser mode. Serves the built renderer and the lab API over a WebSocket on
 * localhost (DESIGN §2, §7), prints the URL with its token and runs until SIGINT/SIGTERM.
 */
import type { Command } from '../command';
import { numberOpt, stringOpt, UsageError } from '../command';
import { serveUntilSignal } from '../../server/run';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve the app to a web browser on localhost (browser mode)',
  usage: `Usage: nmlab serve [--host 127.0.0.1] [--port N] [--json]

Serves NMLab's interface and API on http://HOST:PORT. The printed URL carries a random
token; the page and the API refuse requests without it, and WebSocket connections from
other origins. On a remote machine keep the default host and use an SSH tunnel:
  ssh -L 8765:127.0.0.1:8765 gpu-box 'nmlab serve --port 8765'

Options:
  --host H   interface to bind (default 127.0.0.1; anything else exposes the lab to the network)
  --port N   port to listen on (default 0: a free port is chosen)
  --json     print {"url", "host", "port", "token"} as one JSON line once listening
Each WebSocket connection may send messages of at most 1 MiB, 100 requests per second (bursts
of 200) and 64 unanswered requests; a client that breaks the protocol or these limits is
disconnected (close code 1002, 1007, 1008 or 1009) with one log line, and the server and its
running jobs carry on.
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
    await serveUntilSignal({ host, port, json: args.values.json === true, out: io.out, err: io.err });
    return 0;
  },
};
