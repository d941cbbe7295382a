/**
 * electron-vite build of the desktop app (STYLE.md §1): `out/main` (Electron main process),
 * `out/preload` (the sandboxed bridge) and `out/renderer` (the Vue app, also served by
 * `nmlab serve`). Jobs run in `out/node/worker.mjs`, built separately by `npm run build:node`.
 */
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

/** Native and heavy ML packages load from node_modules at run time, never from a bundle. */
const nativeExternals = ['onnxruntime-node', /^@tensorflow\//];

export default defineConfig({
  main: {
    build: {
      externalizeDeps: true,
      rolldownOptions: { external: nativeExternals },
    },
  },
  preload: {
    build: {
      // A sandboxed preload cannot `require` from node_modules and must be CommonJS, so
      // everything it uses (the contract and zod) is bundled into one .cjs file.
      externalizeDeps: false,
      rolldownOptions: {
        input: { index: resolve('src/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'src/renderer',
    plugins: [vue()],
    build: {
      outDir: resolve('out/renderer'),
      rolldownOptions: { input: { index: resolve('src/renderer/index.html') } },
      // Chart.js and Vue are the bulk; one chunk each keeps file:// loading simple.
      chunkSizeWarningLimit: 2048,
    },
  },
});
