import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // tests import the SDK's testing module by its published name, as a worker project does
  resolve: { alias: { 'pg-node-worker/testing': path.resolve(__dirname, 'src', 'testing', 'index.ts') } },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/helpers/setup.ts'],
    // one initdb per run, copied by every cluster
    globalSetup: ['test/helpers/initdb-template.ts'],
    // each file starts its own clusters; 2 cores: keep it to two at a time (PGNW_TEST_WORKERS:
    // fewer, when something else shares the cores, as .ci/run's host suite beside the matrix)
    maxWorkers: Number(process.env.PGNW_TEST_WORKERS) || 2,
    minWorkers: 1,
    // the test files of one worker process share its modules (vitest, pg, the helpers): a new
    // process per file cost a suite ~20 s of CPU (measured with process accounting), on CI's 2
    // cores that the matrix environments share. Each file still gets its own clusters, which
    // afterAll destroys; a file that changes process-wide state (TZ) puts it back in afterAll.
    isolate: false,
    testTimeout: 60000,
    hookTimeout: 120000,
    reporters: ['default'],
  },
});
