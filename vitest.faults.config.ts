import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: the long fault runs (test/faults/*.faults.ts) — memory outside the V8
 * heap, the pgbench soak, 1M SPI calls. One file at a time: they measure RSS and run pgbench on
 * a 2-core machine, and must not compete with each other.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.faults.ts'],
    setupFiles: ['test/helpers/setup.ts'],
    // one initdb per run, copied by every cluster
    globalSetup: ['test/helpers/initdb-template.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    minWorkers: 1,
    testTimeout: 300000,
    hookTimeout: 120000,
    reporters: ['default'],
  },
});
