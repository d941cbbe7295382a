#!/usr/bin/env node
// The `nmlab` command. Runs the bundled CLI from `out/node/cli.mjs` (built by
// `npm run build:node`); in a source checkout without a build it falls back to tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'out', 'node', 'cli.mjs');
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  if (!existsSync(tsx)) {
    process.stderr.write('nmlab: not built. Run `npm run build:node` (or `npm run setup`) first.\n');
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [tsx, join(root, 'src', 'cli', 'main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
