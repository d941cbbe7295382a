#!/usr/bin/env node
// `npm run fetch-optional`: tries to fetch the optional, downloadable parts of NMLab, each with
// a short time limit, and never fails (exit 0): the Electron runtime, the native TensorFlow
// backends (@tensorflow/tfjs-node, -gpu on NVIDIA machines) and onnxruntime's CUDA provider.
// Then prints what is missing and what still works without it.
//
//   NMLAB_OFFLINE=1            skip every download (just report)
//   NMLAB_FETCH_TIMEOUT_S=N    time limit per download step (default 120)
//   ELECTRON_MIRROR=…          honoured by Electron's installer
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const offline = process.env.NMLAB_OFFLINE === '1';
const stepTimeoutMs = Math.max(5, Number(process.env.NMLAB_FETCH_TIMEOUT_S) || 120) * 1000;
const TFJS_VERSION = '4.22.0';

/** Any HTTP answer within `ms` counts as reachable; DNS failure, refusal or timeout does not. */
async function reachable(url, ms = 5000) {
  try {
    await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(ms), redirect: 'manual' });
    return true;
  } catch {
    return false;
  }
}

/** Run a command with a time limit; never throws. */
function run(cmd, args, { env = {}, timeoutMs = stepTimeoutMs } = {}) {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const keep = (c) => {
      output = (output + c.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: err.message });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ ok: true, detail: '' });
      else if (signal === 'SIGKILL') resolve({ ok: false, detail: `gave up after ${timeoutMs / 1000} s` });
      else resolve({ ok: false, detail: lastLine(output) || `exit code ${code}` });
    });
  });
}

function lastLine(text) {
  return text.trim().split('\n').filter(Boolean).pop()?.slice(0, 160) ?? '';
}

function resolvable(name) {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

function electronPresent() {
  try {
    const path = require('electron');
    return typeof path === 'string' && existsSync(path);
  } catch {
    return false;
  }
}

function hasNvidiaGpu() {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 && /GPU \d/.test(r.stdout);
}

function ortCudaPresent() {
  const bin = join(root, 'node_modules', 'onnxruntime-node', 'bin');
  if (!existsSync(bin)) return false;
  const stack = [bin];
  while (stack.length) {
    const dir = stack.pop();
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) stack.push(join(dir, e.name));
      else if (/onnxruntime_providers_cuda/.test(e.name)) return true;
    }
  }
  return false;
}

const rows = [];
const note = (component, status, detail) => rows.push({ component, status, detail });
const say = (t) => process.stdout.write(t + '\n');

say('NMLab: fetching optional components' + (offline ? ' (NMLAB_OFFLINE=1: report only)' : '') + '\n');

// 1. Electron runtime (desktop app).
if (electronPresent()) note('Electron runtime', 'present', 'desktop app: npm start');
else if (offline) note('Electron runtime', 'missing', 'skipped (offline)');
else {
  const host = process.env.ELECTRON_MIRROR || 'https://github.com/';
  if (!(await reachable(host))) note('Electron runtime', 'missing', `${host} unreachable`);
  else {
    say(`- Electron: downloading (limit ${stepTimeoutMs / 1000} s)…`);
    const r = await run(process.execPath, [join(root, 'node_modules', 'electron', 'install.js')]);
    note('Electron runtime', r.ok && electronPresent() ? 'installed' : 'missing', r.ok ? 'desktop app: npm start' : r.detail);
  }
}

// 2. Native TensorFlow backends: tfjs-node downloads libtensorflow from Google Cloud Storage.
const gpu = hasNvidiaGpu();
const tfTargets = [['@tensorflow/tfjs-node', 'TF.js native CPU (tfjs-node)', true], ['@tensorflow/tfjs-node-gpu', 'TF.js CUDA (tfjs-node-gpu)', gpu]];
for (const [pkg, label, wanted] of tfTargets) {
  if (resolvable(pkg)) {
    note(label, 'present', 'used before wasm');
    continue;
  }
  if (!wanted) {
    note(label, 'missing', 'no NVIDIA GPU (nvidia-smi) here');
    continue;
  }
  if (offline) {
    note(label, 'missing', 'skipped (offline)');
    continue;
  }
  const cdn = process.env.TFJS_NODE_CDN_STORAGE || 'https://storage.googleapis.com/';
  if (!(await reachable(cdn))) {
    note(label, 'missing', `${cdn} unreachable (libtensorflow download)`);
    continue;
  }
  say(`- ${pkg}: installing (limit ${stepTimeoutMs / 1000} s)…`);
  // --no-save: an optional extra, not a dependency; `npm install` later may remove it again.
  const r = await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', `${pkg}@${TFJS_VERSION}`]);
  note(label, r.ok && resolvable(pkg) ? 'installed' : 'missing', r.ok ? 'used before wasm' : r.detail);
}

// 3. onnxruntime-node's CUDA execution provider (Linux x64 only, fetched from NuGet). NMLab uses
// it for every onnxruntime session once `nmlab doctor` proves it runs (src/core/onnx/providers.ts).
const CUDA_EP = 'ONNX Runtime CUDA EP';
const cudaNeeds = 'needs the CUDA 12 and cuDNN 9 libraries on the library path; `nmlab doctor` shows whether it runs';
if (ortCudaPresent()) note(CUDA_EP, 'present', cudaNeeds);
else if (!(process.platform === 'linux' && process.arch === 'x64')) note(CUDA_EP, 'missing', `not fetched: onnxruntime-node offers CUDA on linux-x64 only (this is ${process.platform}-${process.arch})`);
else if (!gpu) note(CUDA_EP, 'missing', 'not fetched: nvidia-smi finds no NVIDIA GPU here, so it could not run; sessions use CPU');
else if (offline) note(CUDA_EP, 'missing', 'not fetched (offline)');
else if (!(await reachable('https://api.nuget.org/v3/index.json'))) note(CUDA_EP, 'missing', 'not fetched: api.nuget.org is unreachable from here');
else {
  say(`- onnxruntime CUDA EP: downloading (limit ${stepTimeoutMs / 1000} s)…`);
  const r = await run(process.execPath, [join(root, 'node_modules', 'onnxruntime-node', 'script', 'install.js'), '--onnxruntime-node-install=cuda12']);
  note(CUDA_EP, r.ok && ortCudaPresent() ? 'installed' : 'missing', r.ok ? cudaNeeds : `download failed: ${r.detail}`);
}

// What always ships with the npm install.
note('TF.js wasm backend', resolvable('@tensorflow/tfjs-backend-wasm') ? 'present' : 'missing', 'always available');
note('TF.js cpu backend', resolvable('@tensorflow/tfjs-backend-cpu') ? 'present' : 'missing', 'fallback');
note('ONNX Runtime CPU', resolvable('onnxruntime-node') ? 'present' : 'missing', 'imported backbones');
const chromium = process.env.NMLAB_CHROMIUM || '/usr/bin/chromium';
note('Chromium (e2e tests)', existsSync(chromium) ? 'present' : 'missing', existsSync(chromium) ? chromium : `${chromium} not found; set NMLAB_CHROMIUM`);

const width = Math.max(...rows.map((r) => r.component.length));
say('');
say(`${'Component'.padEnd(width)}  Status     Note`);
for (const r of rows) say(`${r.component.padEnd(width)}  ${r.status.padEnd(9)}  ${r.detail}`);

const has = (c) => rows.some((r) => r.component === c && r.status !== 'missing');
say('\nWhat works now:');
say(has('Electron runtime') ? '  - desktop app: npm start' : '  - desktop app: NO (no Electron runtime); use browser mode: node bin/nmlab.mjs serve');
say('  - browser mode (nmlab serve), the CLI and all tests except the Electron e2e tests');
const tf = has('TF.js CUDA (tfjs-node-gpu)') ? 'tensorflow-gpu (CUDA)' : has('TF.js native CPU (tfjs-node)') ? 'tensorflow (native CPU)' : 'wasm (slower than native, works everywhere)';
say(`  - training on TF.js backend: ${tf}`);
say(`  - onnxruntime sessions (inference and training): ${has(CUDA_EP) ? 'CUDA where `nmlab doctor` proves it, else CPU' : 'CPU'} (NMLAB_EP forces a provider)`);
process.exitCode = 0;
