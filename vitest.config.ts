import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // tests import the SDK's testing module by its published name, as a worker project does
  resolve: { alias: { 'pg-node-worker/testing': path.resolve(__dirname, 'src', 'testing', 'index.ts') } },
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
