import { describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// Simulate a machine where onnxruntime-node's native binary cannot load.
vi.mock('onnxruntime-node', () => {
  throw new Error('libonnxruntime.so.1: cannot open shared object file');
});

const dir = new URL('../fixtures/spectrum/', import.meta.url).pathname;

describe('spectrum without onnxruntime', () => {
  it("falls back to the JS Gram under 'auto' and says why", async () => {
    const { spectrumOfFile } = await import('../../src/core/spectrum');
    const want = (JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { cases: { tall_f32: { none: { sve: number; singularValues: number[] } } } }).cases.tall_f32.none;
    const r = await spectrumOfFile(join(dir, 'tall_f32.npy'), { chunkRows: 16 });
    expect(r.method).toBe('gram-js-f64');
    expect(r.fallbackReason).toMatch(/onnxruntime-node unavailable/);
    expect(Math.abs(r.sve - want.sve)).toBeLessThan(1e-9);
    expect(Math.abs(r.singularValues[0] - want.singularValues[0])).toBeLessThan(1e-6 * want.singularValues[0]);
  });
  it("fails clearly under 'ort'", async () => {
    const { spectrumOfFile } = await import('../../src/core/spectrum');
    await expect(spectrumOfFile(join(dir, 'tall_f32.npy'), { gram: 'ort' })).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
  });
});
