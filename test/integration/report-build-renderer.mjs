// Builds the renderer (the app's pages, with the report route) into a folder for the report
// test: `node test/integration/report-build-renderer.mjs OUT_DIR`. The same Vite settings as
// electron.vite.config.ts's renderer, without touching the shared out/ folder.
import { build } from 'vite';
import vue from '@vitejs/plugin-vue';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = resolve(process.argv[2]);
await build({
  configFile: false,
  root: join(root, 'src', 'renderer'),
  base: './',
  plugins: [vue()],
  logLevel: 'warn',
  build: { outDir: out, emptyOutDir: true, chunkSizeWarningLimit: 4096, rolldownOptions: { input: { index: join(root, 'src', 'renderer', 'index.html') } } },
});
