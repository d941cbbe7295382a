#!/usr/bin/env node
// Bundles NMLab's Node entry points with esbuild (`npm run build:node`):
//   src/cli/main.ts        -> out/node/cli.mjs     (the `nmlab` command, run by bin/nmlab.mjs)
//   src/core/jobs/worker.ts -> out/node/worker.mjs  (one job per worker process)
//   src/server/main.ts     -> out/node/server.mjs  (browser mode; only when that file exists)
// node_modules stay external: onnxruntime-node and tfjs load native/wasm files relative to
// their own package folders, which bundling would break (NOTES.md §1).
import { build } from 'esbuild';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'out', 'node');

const entries = [
  { in: 'src/cli/main.ts', out: 'cli' },
  { in: 'src/core/jobs/worker.ts', out: 'worker' },
  { in: 'src/server/main.ts', out: 'server', optional: true },
].filter((e) => {
  if (existsSync(join(root, e.in))) return true;
  if (!e.optional) throw new Error(`build-node: missing entry ${e.in}`);
  console.log(`build-node: ${e.in} not present, skipping`);
  return false;
});

// ESM output has no require/__filename/__dirname; some dependencies (and createRequire
// users) expect them, so define them at the top of every bundle.
const banner = [
  "import { createRequire as __nmlabCreateRequire } from 'node:module';",
  "import { fileURLToPath as __nmlabFileURLToPath } from 'node:url';",
  "import { dirname as __nmlabDirname } from 'node:path';",
  'const require = __nmlabCreateRequire(import.meta.url);',
  'const __filename = __nmlabFileURLToPath(import.meta.url);',
  'const __dirname = __nmlabDirname(__filename);',
].join('\n');

// Overwrite in place rather than emptying the folder first, so a CLI started while a build
// runs never finds the bundles missing; only remove bundles whose entry has gone.
for (const e of [{ in: 'src/server/main.ts', out: 'server' }]) {
  if (!existsSync(join(root, e.in))) for (const ext of ['.mjs', '.mjs.map']) rmSync(join(outdir, e.out + ext), { force: true });
}
const started = Date.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: entries.map((e) => ({ in: e.in, out: e.out })),
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  packages: 'external',
  banner: { js: banner },
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.mjs'))
  .map(([file, meta]) => `  ${file}  ${(meta.bytes / 1024).toFixed(1)} KiB`);
console.log(`build-node: ${outputs.length} bundle(s) in ${Date.now() - started} ms\n${outputs.join('\n')}`);
