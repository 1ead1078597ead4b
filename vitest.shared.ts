import { defineConfig } from 'vitest/config';

/** Test settings shared by the packages: real files and processes, so generous timeouts; forks pool (wasm heaps stay per process). */
export const packageTestConfig = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
