import { defineConfig } from 'vitest/config';

/**
 * The unit tests alone (test/unit: no server, no pg_config): `npx vitest run --config
 * vitest.unit.config.ts`. The normal suite (vitest.config.ts) runs them too.
 */
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    reporters: ['default'],
  },
});
