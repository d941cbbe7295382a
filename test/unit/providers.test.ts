import { afterEach, describe, expect, it } from 'vitest';
import { chooseProviders, cudaBinariesPresent, executionProvidersFor, forcedProvider, loadOrt, matmulChainModel, probeProvider, providerCandidates, sessionOptions } from '../../src/core/onnx/providers';
import { measureProviderMatmul, probeOnnxruntime } from '../../src/core/env/doctor';

const saved = process.env.NMLAB_EP;
afterEach(() => {
  if (saved === undefined) delete process.env.NMLAB_EP;
  else process.env.NMLAB_EP = saved;
});

describe('execution-provider candidates and NMLAB_EP', () => {
  it('orders the platform GPU providers before CPU, CPU always last', () => {
    expect(providerCandidates('linux')).toEqual(['cuda', 'webgpu', 'cpu']);
    expect(providerCandidates('win32')).toEqual(['dml', 'webgpu', 'cpu']);
    expect(providerCandidates('darwin')).toEqual(['coreml', 'webgpu', 'cpu']);
    expect(providerCandidates('freebsd')).toEqual(['cpu']);
    expect(executionProvidersFor('cuda')).toEqual(['cuda', 'cpu']);
    expect(executionProvidersFor('cpu')).toEqual(['cpu']);
  });

  it('parses NMLAB_EP case-insensitively and rejects unknown names with the list of valid ones', () => {
    expect(forcedProvider(undefined)).toBeNull();
    expect(forcedProvider(' ')).toBeNull();
    expect(forcedProvider('CUDA')).toBe('cuda');
    expect(() => forcedProvider('gpu')).toThrow(/NMLAB_EP=gpu is not an execution provider; use one of cuda, dml, coreml, webgpu, cpu/);
  });
});

describe('probing and choosing', () => {
  it('proves CPU with a session whose product is checked, and explains every unavailable candidate', async () => {
    const cpu = await probeProvider('cpu');
    expect(cpu).toMatchObject({ name: 'cpu', available: true });
    for (const name of providerCandidates()) {
      const p = await probeProvider(name);
      expect(p.name).toBe(name);
      if (!p.available) expect(p.detail.length).toBeGreaterThan(10);
    }
    // DirectML is never offered on Linux/macOS, CoreML never on Linux/Windows.
    if (process.platform !== 'win32') expect((await probeProvider('dml')).detail).toMatch(/not offered by onnxruntime-node on/);
  });

  it('chooses the first candidate whose probe passes, and every session gets that choice', async () => {
    delete process.env.NMLAB_EP;
    const c = await chooseProviders();
    expect(c.forced).toBe(false);
    const firstAvailable = c.probes.find((p) => p.available);
    expect(c.name).toBe(firstAvailable?.name);
    // Every candidate before the chosen one was tried and failed.
    expect(c.probes.slice(0, -1).every((p) => !p.available)).toBe(true);
    expect(c.executionProviders).toEqual(executionProvidersFor(c.name));
    expect((await sessionOptions({ intraOpNumThreads: 1 })).executionProviders).toEqual(c.executionProviders);
  });

  it('honours NMLAB_EP=cpu', async () => {
    process.env.NMLAB_EP = 'cpu';
    const c = await chooseProviders();
    expect(c).toMatchObject({ name: 'cpu', forced: true, executionProviders: ['cpu'] });
  });

  it('fails clearly when the forced provider is unavailable (never a silent CPU run)', async (ctx) => {
    if (cudaBinariesPresent()) ctx.skip('the CUDA binaries are installed here, so NMLAB_EP=cuda may legitimately work');
    process.env.NMLAB_EP = 'cuda';
    await expect(chooseProviders()).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE', message: expect.stringMatching(/NMLAB_EP=cuda, but the cuda execution provider is unavailable: .*(fetch-optional|linux-x64)/) });
  });

  it('doctor reports a mistyped or unavailable NMLAB_EP instead of failing', async () => {
    process.env.NMLAB_EP = 'gpu';
    const typo = await probeOnnxruntime(32, 0.01);
    expect(typo).toMatchObject({ loaded: true, chosen: 'cpu', forced: false });
    expect(typo.detail).toMatch(/NMLAB_EP=gpu is not an execution provider/);
    process.env.NMLAB_EP = 'cpu';
    expect(await probeOnnxruntime(32, 0.01)).toMatchObject({ loaded: true, chosen: 'cpu', forced: true });
  });

  it('the probe model computes a MatMul chain that JS reproduces', async () => {
    const ort = await loadOrt();
    const s = await ort.InferenceSession.create(matmulChainModel(3), { executionProviders: ['cpu'] });
    const a = Float32Array.from([1, -2, 0.5, 3, 0, 1]); // 2×3
    const b = Float32Array.from([0.5, 1, 0, -1, 2, 1, 0, 0.25, 1]); // 3×3
    const y = (await s.run({ A: new ort.Tensor('float32', a, [2, 3]), B: new ort.Tensor('float32', b, [3, 3]) })).Y.data as Float32Array;
    await s.release();
    let m = [Array.from(a.subarray(0, 3)), Array.from(a.subarray(3))];
    for (let l = 0; l < 3; l++) m = m.map((row) => [0, 1, 2].map((j) => row.reduce((acc, v, k) => acc + v * b[k * 3 + j], 0)));
    expect(Array.from(y)).toEqual(m.flat().map((v) => Math.fround(v)));
  });

  it('times each available provider with a checked result (doctor GFLOP/s)', async () => {
    const m = await measureProviderMatmul('cpu', 64, 0.05);
    expect(m.gflops).toBeGreaterThan(0);
    expect(m.maxAbsError).toBeLessThan(1e-3);
  });

  it('runs a CUDA session when a GPU is present', async (ctx) => {
    const cuda = await probeProvider('cuda');
    if (!cuda.available) ctx.skip(`needs the CUDA execution provider: ${cuda.detail}`);
    const m = await measureProviderMatmul('cuda', 256, 0.05);
    const c = await measureProviderMatmul('cpu', 256, 0.05);
    expect(m.maxAbsError).toBeLessThan(1e-2);
    expect(c.maxAbsError).toBeLessThan(1e-2);
  });
});
