#!/usr/bin/env node
// `npm start`: launches the desktop app (out/main) with the Electron binary when it is
// installed. Electron's own download is an optional install step (`npm run fetch-optional`);
// without it this prints how to use browser mode instead and exits 1.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

function electronBinary() {
  try {
    // The electron package exports the binary's path, and throws when it was never downloaded.
    const path = require('electron');
    if (typeof path !== 'string') return { missing: 'the electron package did not return a path' };
    if (!existsSync(path)) return { missing: `${path} does not exist` };
    return { path };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    // electron/index.js says "failed to install correctly" when its download step never ran.
    return { missing: /failed to install correctly/.test(message) ? 'node_modules/electron has no downloaded runtime (its install script is denied by allowScripts and needs network)' : message };
  }
}

const found = electronBinary();
if (!found.path) {
  process.stderr.write(
    [
      'NMLab desktop app: the Electron runtime is not installed.',
      `  (${found.missing})`,
      '',
      'Either fetch it (needs network access to GitHub or an ELECTRON_MIRROR):',
      '  npm run fetch-optional',
      '',
      'or use NMLab in a web browser now (browser mode, same features):',
      '  node bin/nmlab.mjs serve',
      'and open the http://127.0.0.1:…/?token=… URL it prints.',
      '',
    ].join('\n'),
  );
  process.exit(1);
}

const missingBuild = ['out/main/index.js', 'out/preload/index.cjs', 'out/renderer/index.html', 'out/node/worker.mjs'].filter((f) => !existsSync(join(root, f)));
if (missingBuild.length) {
  process.stderr.write(`NMLab is not built (missing ${missingBuild.join(', ')}). Run \`npm run build\` first.\n`);
  process.exit(1);
}

// An inherited ELECTRON_RUN_AS_NODE (e.g. from an editor's terminal) would run main as plain Node.
const env = { ...process.env };
delete env.ELECTRON_RUN_AS_NODE;
const child = spawn(found.path, [root, ...process.argv.slice(2)], { stdio: 'inherit', env, cwd: root });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (child.exitCode === null) child.kill(signal);
  });
}
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
child.on('error', (err) => {
  process.stderr.write(`NMLab: could not start Electron (${found.path}): ${err.message}\n`);
  process.exit(1);
});
