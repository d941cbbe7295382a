/**
 * `node out/node/server.mjs [--host H] [--port N] [--json]`: browser mode without the CLI.
 * A separate entry module, so that importing the server (the CLI bundle, tests) never runs it.
 */
import { parseArgs } from 'node:util';
import { serveUntilSignal } from './run';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' }, json: { type: 'boolean' } } });
  const port = Number(values.port ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer 0..65535, got ${values.port}`);
  const io = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t) };
  await serveUntilSignal({ host: values.host ?? '127.0.0.1', port, json: values.json === true, ...io });
}

main().catch((err: unknown) => {
  process.stderr.write(`nmlab server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
