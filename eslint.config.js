// Layering (STYLE.md conventions 1): shared ← core ← entry points; renderer/preload see only shared.
// These restrictions are the architecture: do not relax them.
import tseslint from 'typescript-eslint';
import pluginVue from 'eslint-plugin-vue';
import vueParser from 'vue-eslint-parser';

const layer = (files, patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});
const entry = (name) => ({ group: [`**/${name}/**`, `../${name}`, `../${name}/*`], message: `entry points never import each other (${name})` });

export default tseslint.config(
  { ignores: ['.scratch/**', 'out/**', 'dist/**', 'node_modules/**', 'test-results/**', 'playwright-report/**', 'resources/**'] },
  ...tseslint.configs.recommended,
  ...pluginVue.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parser: vueParser, parserOptions: { parser: tseslint.parser, sourceType: 'module' } },
  },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-throw-literal': 'error',
      'vue/multi-word-component-names': 'off',
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
    },
  },
  layer(['src/shared/**'], [
    { group: ['**/core/**', '**/main/**', '**/renderer/**', '**/server/**', '**/cli/**', '**/preload/**'], message: 'shared imports nothing of the app' },
    { group: ['node:*', 'fs', 'path', 'child_process', 'electron', 'vue'], message: 'shared has no Node, DOM framework or Electron' },
  ]),
  layer(['src/core/**'], [
    { group: ['electron', '**/main/**', '**/renderer/**', '**/server/**', '**/cli/**', '**/preload/**'], message: 'core is plain Node: no Electron, no entry points' },
  ]),
  layer(['src/renderer/**', 'src/preload/**'], [
    { group: ['**/core/**', '**/main/**', '**/server/**', '**/cli/**', 'node:*', 'fs', 'path', 'child_process', 'onnxruntime-node', '@tensorflow/*'], message: 'renderer and preload import only shared' },
  ]),
  layer(['src/main/**'], [entry('server'), entry('cli'), entry('renderer')]),
  layer(['src/server/**'], [entry('main'), entry('cli'), entry('renderer'), { group: ['electron'], message: 'server runs without Electron' }]),
  // `nmlab serve` is the server's command-line front, so the CLI may start the server (and nothing else).
  layer(['src/cli/**'], [entry('main'), entry('renderer'), { group: ['electron'], message: 'the CLI runs without Electron' }]),
);
