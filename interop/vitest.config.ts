import { defineConfig } from 'vitest/config';

/** One suite at a time: each drives Python processes (torch) and the 2-process torchrun test needs the cores. */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
