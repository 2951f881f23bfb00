/**
 * test/helpers/cluster.ts registers an afterEach hook with vitest at load
 * time; outside a vitest run `require('vitest')` throws.  The bench loads
 * this file first: it puts a stand-in for 'vitest' into the CommonJS module
 * cache whose hooks (afterEach, beforeAll, ...) do nothing.
 */
import Module = require('node:module');

const id = require.resolve('vitest');
const stub = new Module(id);
stub.filename = id;
stub.loaded = true;
const noop = () => undefined;
stub.exports = new Proxy(
  {},
  {
    get: (_target, key) => (typeof key === 'string' && key !== 'then' && key !== '__esModule' ? noop : undefined),
  },
);
require.cache[id] = stub;
