/**
 * ctx.shared: named shared memory regions as SharedArrayBuffers, Atomics across
 * worker processes, size mismatch and pool exhaustion, node_worker.shared_regions and
 * node_worker.shared_read() from SQL, lifetime across worker and server restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from './helpers/cluster';
import { waitFor } from './helpers/cluster';
import { evaluatorCluster, inWorker, inWorkerError } from './helpers/evalWorker';

let cluster: Cluster;

const read = async (name: string, offset?: number, length?: number): Promise<Buffer> =>
  (await cluster.query<{ b: Buffer }>('SELECT node_worker.shared_read($1, $2, $3) AS b', [name, offset ?? 0, length ?? null]))[0].b;

const sqlError = (sql: string, params: unknown[] = []) => cluster.query(sql, params).then(() => null, (e) => e);

beforeAll(async () => {
  cluster = await evaluatorCluster({ settings: { 'node_worker.shared_memory_mb': 1 } });
  await cluster.deployFile('shared-adder.ts');
  await cluster.query('CREATE EXTENSION pg_node_worker');
}, 60000);

afterAll(async () => cluster?.destroy());

describe('ctx.shared', () => {
  it('returns a zero-filled SharedArrayBuffer, the same object for the same name', async () => {
    const r = await inWorker(
      cluster,
      `const a = ctx.shared('basic', 100);
       const b = ctx.shared('basic', 100);
       const bytes = new Uint8Array(a);
       const zero = bytes.every((x) => x === 0);
       new Int32Array(a)[0] = 0x01020304;
       bytes[99] = 0xff;
       return { sab: a instanceof SharedArrayBuffer, len: a.byteLength, same: a === b, zero };`,
    );
    expect(r).toEqual({ sab: true, len: 100, same: true, zero: true });
    const b = await read('basic');
    expect(b.length).toBe(100);
    expect(b.readInt32LE(0)).toBe(0x01020304);
    expect(b[99]).toBe(0xff);
  });

  it('refuses another size for an existing region, with the size it has', async () => {
    const e = await inWorkerError(cluster, `ctx.shared('basic', 200)`);
    expect(e).toMatchObject({ isPgError: true, code: '22023', message: 'shared region "basic" exists with 100 bytes, not 200' });
    expect(e.hint).toMatch(/keeps its size until the server restarts/);
  });

  it('checks names and sizes', async () => {
    for (const name of ["''", "'x'.repeat(64)"]) {
      const e = await inWorkerError(cluster, `ctx.shared(${name}, 8)`);
      expect(e, name).toMatchObject({ isPgError: true, code: '42602' });
    }
    expect(await inWorker(cluster, `return ctx.shared('y'.repeat(63), 8).byteLength`)).toBe(8);
    for (const code of [`ctx.shared('a\\0b', 8)`, `ctx.shared(1, 8)`]) expect((await inWorkerError(cluster, code)).name, code).toBe('TypeError');
    for (const code of [`ctx.shared('z', 0)`, `ctx.shared('z', 1.5)`, `ctx.shared('z', -8)`]) expect((await inWorkerError(cluster, code)).name, code).toBe('RangeError');
  });

  it('is one memory for many processes: 4 workers × 100k Atomics increments end at exactly 400k', async () => {
    for (let i = 0; i < 4; i++) await cluster.query(`SELECT node_worker.launch('adder', '{"region": "race4", "n": 100000, "workers": 4}')`);
    await waitFor('4 adders done', async () => (await read('race4')).readInt32LE(4) === 4, 60000, 100);
    const b = await read('race4');
    expect(b.readInt32LE(0)).toBe(400000); // Atomics.add, Int32Array
    expect(b.readBigInt64LE(32)).toBe(400000n); // Atomics.add, BigInt64Array
    expect(b.readInt32LE(40)).toBe(400000); // compareExchange loop
    // the plain ++ raced (lost updates are expected, not guaranteed): only reported
    console.log(`non-atomic ++ by 4 workers: ${b.readInt32LE(48)} of 400000`);
  });

  it('2 workers × 1M Atomics.add end at exactly 2M', async () => {
    for (let i = 0; i < 2; i++) await cluster.query(`SELECT node_worker.launch('adder', '{"region": "race2", "n": 1000000, "workers": 2}')`);
    await waitFor('2 adders done', async () => (await read('race2')).readInt32LE(4) === 2, 60000, 100);
    const b = await read('race2');
    expect(b.readInt32LE(0)).toBe(2000000);
    expect(b.readBigInt64LE(32)).toBe(2000000n);
    expect(b.readInt32LE(40)).toBe(2000000);
  });

  it('works in any worker, also one started by restart()', async () => {
    // deployed now, started by restart(); at the next server start it runs as a start:
    // 'postmaster' worker, without a database connection (see 'server restarts')
    await cluster.deployFile('shared-early.ts');
    await cluster.query("SELECT node_worker.restart('early')");
    await waitFor('early to write', async () => (await read('early').catch(() => Buffer.alloc(4))).readInt32LE(0) === 7);
  });

  it('runs out of the pool with an error that names node_worker.shared_memory_mb', async () => {
    const big = await inWorkerError(cluster, `ctx.shared('huge', 2 * 1024 * 1024)`);
    expect(big).toMatchObject({ isPgError: true, code: '53200' });
    expect(big.message).toMatch(/could not create shared region "huge" of 2097152 bytes: the pool has \d+ of 1048576 bytes left/);
    expect(big.hint).toMatch(/node_worker\.shared_memory_mb/);
    // regions take whole 64-byte lines: fill the pool exactly, then one more byte fails
    const used = (await cluster.query<{ size: string }>('SELECT size FROM node_worker.shared_regions')).reduce(
      (sum, r) => sum + Math.ceil(Number(r.size) / 64) * 64,
      0,
    );
    expect(await inWorker(cluster, `return ctx.shared('rest', ${1024 * 1024 - used}).byteLength`)).toBe(1024 * 1024 - used);
    expect(await inWorkerError(cluster, `ctx.shared('one-more', 1)`)).toMatchObject({ code: '53200' });
    // an existing region still opens
    expect(await inWorker(cluster, `return ctx.shared('basic', 100).byteLength`)).toBe(100);
  });

  it('survives a restart of the worker', async () => {
    await inWorker(cluster, `Atomics.store(new Int32Array(ctx.shared('basic', 100)), 1, 42)`);
    const from = cluster.log().length;
    await cluster.query("SELECT node_worker.restart('evaluator')");
    await cluster.waitForLog(/evaluator: evaluator ready/, 20000, from);
    expect(await inWorker(cluster, `return Atomics.load(new Int32Array(ctx.shared('basic', 100)), 1)`)).toBe(42);
  });

});

describe('SQL', () => {
  it('node_worker.shared_regions lists name and size in creation order', async () => {
    const rows = await cluster.query<{ name: string; size: string }>('SELECT * FROM node_worker.shared_regions');
    expect(Object.keys(rows[0])).toEqual(['name', 'size']);
    expect(rows.slice(0, 2)).toEqual([{ name: 'basic', size: '100' }, { name: 'y'.repeat(63), size: '8' }]);
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['race4', 'race2', 'rest']));
    expect(rows.map((r) => r.name)).not.toContain('huge');
  });

  it('shared_read reads a range, and refuses what is not there', async () => {
    expect([...(await read('basic', 96, 4))]).toEqual([0, 0, 0, 0xff]);
    expect((await read('basic', 100)).length).toBe(0);
    expect(await sqlError("SELECT node_worker.shared_read('nope')")).toMatchObject({ code: '42704', message: 'shared region "nope" does not exist' });
    expect(await sqlError("SELECT node_worker.shared_read('basic', 101)")).toMatchObject({ code: '22023' });
    expect(await sqlError("SELECT node_worker.shared_read('basic', -1)")).toMatchObject({ code: '22023' });
    expect(await sqlError("SELECT node_worker.shared_read('basic', 50, 51)")).toMatchObject({ code: '22023' });
    expect(await sqlError('SELECT node_worker.shared_read(NULL)')).toMatchObject({ code: '22004' });
  });

  it('are installed by ALTER EXTENSION pg_node_worker UPDATE from 0.3', async () => {
    await cluster.query('CREATE DATABASE upgraded');
    await cluster.query("CREATE EXTENSION pg_node_worker VERSION '0.3'", [], 'upgraded');
    await cluster.query('ALTER EXTENSION pg_node_worker UPDATE', [], 'upgraded');
    expect(await cluster.query("SELECT extversion FROM pg_extension WHERE extname = 'pg_node_worker'", [], 'upgraded')).toEqual([{ extversion: '0.8' }]);
    const rows = await cluster.query<{ name: string }>('SELECT name FROM node_worker.shared_regions', [], 'upgraded');
    expect(rows.map((r) => r.name)).toContain('basic');
  });

  it('is for superusers and node_worker_admin only', async () => {
    await cluster.query('CREATE ROLE app LOGIN');
    const client = await cluster.client('postgres', 'app');
    try {
      for (const sql of ["SELECT node_worker.shared_read('basic')", 'SELECT * FROM node_worker.shared_regions']) {
        const e = await client.query(sql).then(() => null, (err) => err);
        expect(e?.code, sql).toBe('42501');
      }
      await cluster.query('GRANT node_worker_admin TO app');
      expect((await client.query("SELECT length(node_worker.shared_read('basic')) AS n")).rows).toEqual([{ n: 100 }]);
      expect((await client.query('SELECT count(*)::int AS n FROM node_worker.shared_regions')).rows[0].n).toBeGreaterThan(3);
    } finally {
      await client.end();
    }
  });
});

describe('server restarts', () => {
  it('start empty: regions do not survive a server restart', async () => {
    const from = cluster.log().length;
    await cluster.restart();
    await cluster.waitForLog(/evaluator: evaluator ready/, 20000, from);
    const names = (await cluster.query<{ name: string }>('SELECT name FROM node_worker.shared_regions')).map((r) => r.name);
    expect(names.filter((n) => n !== 'early')).toEqual([]);
    expect(await sqlError("SELECT node_worker.shared_read('basic')")).toMatchObject({ code: '42704' });
    expect(await inWorker(cluster, `return new Int32Array(ctx.shared('basic', 100))[1]`)).toBe(0);
  });

  it('a start: postmaster worker (no database connection) opens regions too', async () => {
    await waitFor('early to write', async () => (await read('early').catch(() => Buffer.alloc(4))).readInt32LE(0) === 7);
  });

  it('node_worker.shared_memory_mb = 0 disables regions', async () => {
    await cluster.query('ALTER SYSTEM SET node_worker.shared_memory_mb = 0');
    const from = cluster.log().length;
    await cluster.restart();
    await cluster.waitForLog(/evaluator: evaluator ready/, 20000, from);
    const e = await inWorkerError(cluster, `ctx.shared('basic', 100)`);
    expect(e).toMatchObject({ isPgError: true, code: '55000', message: 'shared regions are disabled' });
    expect(e.hint).toMatch(/node_worker\.shared_memory_mb/);
    expect(await cluster.query('SELECT * FROM node_worker.shared_regions')).toEqual([]);
  });
});
