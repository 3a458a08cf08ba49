import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Real Redis, a spawned process and a real browser: generous, never a speed assertion.
    testTimeout: 90_000,
    hookTimeout: 60_000,
    // Each file uses its own queue prefix and port; files still run one at a time so the
    // browser test does not compete with the others for CPU.
    fileParallelism: false,
  },
});
