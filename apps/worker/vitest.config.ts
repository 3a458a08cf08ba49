import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each file starts workers with containers; one file at a time keeps the 2-core machine sane.
    fileParallelism: false,
  },
});
