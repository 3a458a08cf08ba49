import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Real Docker: creating a container and starting the runner takes a second or two.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
