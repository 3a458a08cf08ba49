import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // System tests start processes and containers; one file at a time on a 2-core machine.
    fileParallelism: false,
  },
});
