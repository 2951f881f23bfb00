import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/helpers/setup.ts'],
    // each file starts its own clusters; 2 cores: keep it to two at a time
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60000,
    hookTimeout: 120000,
    reporters: ['default'],
  },
});
