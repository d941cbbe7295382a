import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // Native addons (onnxruntime-node) may segfault in worker threads: keep the forks pool.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
