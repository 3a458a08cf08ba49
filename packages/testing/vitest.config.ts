import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Starts the API and a worker with its container as processes.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
