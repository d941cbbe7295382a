/**
 * wasm matMul with transpose flags, before and after the transpose-first override
 * (src/core/tf/wasmMatMul.ts), at the shapes one step of the MLP tuner runs (batch 128,
 * D = 512, hidden 2048, 10 classes): the forward products and the two gradient products of
 * each layer. Both legs run in the same process, one after the other.
 *
 *   npx tsx bench/matmul.bench.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmMatMulFix, uninstallWasmMatMulFix } from '../src/core/tf/wasmMatMul';

const B = 128;
const D = 512;
const H = 2048;
const C = 10;

interface Shape {
  name: string;
  a: [number, number];
  b: [number, number];
  ta: boolean;
  tb: boolean;
}

// y = x·W (x: B×in, W: in×out); dx = dy·Wᵀ; dW = xᵀ·dy.
function layerShapes(inDim: number, outDim: number): Shape[] {
  const tag = `${inDim}→${outDim}`;
  return [
    { name: `fwd  ${tag}  x·W`, a: [B, inDim], b: [inDim, outDim], ta: false, tb: false },
    { name: `dx   ${tag}  dy·Wᵀ`, a: [B, outDim], b: [inDim, outDim], ta: false, tb: true },
    { name: `dW   ${tag}  xᵀ·dy`, a: [B, inDim], b: [B, outDim], ta: true, tb: false },
  ];
}

const shapes = [...layerShapes(D, H), ...layerShapes(H, D), ...layerShapes(D, C)];

async function timeMs(s: Shape, minMs: number): Promise<number> {
  const a = tf.randomNormal(s.a);
  const b = tf.randomNormal(s.b);
  const once = async () => {
    const y = tf.matMul(a, b, s.ta, s.tb);
    await y.data();
    y.dispose();
  };
  await once();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs || n < 3) {
    await once();
    n++;
  }
  const ms = (performance.now() - t0) / n;
  tf.dispose([a, b]);
  return ms;
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  console.log(`backend wasm (SIMD ${simd ? 'on' : 'off'}), tfjs ${tf.version_core}, ${new Date().toISOString()}`);
  const minMs = Number(process.env.BENCH_MIN_MS ?? 300);
  const rows: Array<{ name: string; before: number; after: number }> = [];
  for (const s of shapes) {
    uninstallWasmMatMulFix();
    const before = await timeMs(s, minMs);
    installWasmMatMulFix();
    const after = await timeMs(s, minMs);
    rows.push({ name: s.name, before, after });
    console.log(`${s.name.padEnd(24)} before ${before.toFixed(2).padStart(8)} ms   after ${after.toFixed(2).padStart(8)} ms   ×${(before / after).toFixed(1)}`);
  }
  const sb = rows.reduce((p, r) => p + r.before, 0);
  const sa = rows.reduce((p, r) => p + r.after, 0);
  console.log(`all MLP-step products   before ${sb.toFixed(1)} ms   after ${sa.toFixed(1)} ms   ratio ×${(sb / sa).toFixed(1)}`);
}

await main();
