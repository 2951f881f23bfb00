/**
 * ctx.buffers on a real cluster: snapshot against pg_buffercache at the same moment,
 * stats, residency before/after a seq scan, prewarm of a whole table and of a block range,
 * readPage against pageinspect's get_raw_page, relation errors, and the privileges each call
 * needs (a worker running as a non-superuser role).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from './helpers/cluster';
import { evaluatorCluster, evaluatorReady, inWorker, inWorkerError } from './helpers/evalWorker';

let cluster: Cluster;

/** buffers of relation `rel` (fork main) in shared_buffers, from pg_buffercache */
const cachedBlocks = async (rel: string): Promise<number[]> =>
  (
    await cluster.query<{ b: string }>(
      `SELECT relblocknumber AS b FROM pg_buffercache
        WHERE relfilenode = pg_relation_filenode($1::regclass) AND relforknumber = 0
          AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY 1`,
      [rel],
    )
  ).map((r) => Number(r.b));

const blocksOf = async (rel: string): Promise<number> =>
  Number((await cluster.query<{ n: string }>(`SELECT pg_relation_size($1::regclass) / 8192 AS n`, [rel]))[0].n);

beforeAll(async () => {
  cluster = await evaluatorCluster({ settings: { autovacuum: 'off', shared_buffers: "'64MB'" } });
  await cluster.query('CREATE EXTENSION pg_buffercache; CREATE EXTENSION pageinspect; CREATE EXTENSION pg_node_worker');
  // ~2.5 MB each: below shared_buffers / 4, so a seq scan caches all of it (no ring buffer)
  for (const t of ['t_scan', 't_whole', 't_range', 't_page'])
    await cluster.query(`CREATE TABLE ${t} AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 40000) g`);
  await cluster.query('CREATE SCHEMA s2; CREATE TABLE s2."Mixed Case" AS SELECT g FROM generate_series(1, 1000) g');
  await cluster.query('CREATE VIEW v AS SELECT 1 AS x');
  await cluster.query('VACUUM t_page');
  await cluster.query('CREATE ROLE plain LOGIN');
  await cluster.query('CREATE DATABASE plaindb OWNER plain');
  await cluster.query('CREATE TABLE t_secret AS SELECT g FROM generate_series(1, 1000) g', [], 'plaindb');
  // a second evaluator, running as the non-superuser role plain, in plaindb
  await cluster.deployTemplate('evaluator', 'evalplain', { database: 'plaindb', role: 'plain' });
  // restart: shared_buffers starts empty, both evaluators run
  const from = cluster.log().length;
  await cluster.restart();
  await evaluatorReady(cluster, from);
  await cluster.waitForLog(/evalplain: evaluator ready/, 20000, from);
}, 120000);

afterAll(async () => cluster?.destroy());

describe('snapshot', () => {
  it('returns columnar typed arrays of every valid buffer', async () => {
    const r = await inWorker(
      cluster,
      `const s = ctx.buffers.snapshot();
       const names = ['database', 'tablespace', 'relfilenode', 'fork', 'block', 'dirty', 'usage'];
       return { count: s.count, total: s.total,
                types: names.map((n) => s[n].constructor.name), lengths: names.map((n) => s[n].length),
                maxUsage: Math.max(...s.usage), forks: [...new Set(s.fork)].sort(),
                frozen: Object.isFrozen(s), hasPgClass: s.relfilenode.includes(Number(ctx.sql\`SELECT pg_relation_filenode('pg_class')::int8 AS f\`[0].f)) };`,
    );
    expect(r.total).toBe(64 * 1024 / 8);
    expect(r.types).toEqual(['Uint32Array', 'Uint32Array', 'Uint32Array', 'Uint8Array', 'Uint32Array', 'Uint8Array', 'Uint8Array']);
    expect(r.lengths).toEqual(Array(7).fill(r.count));
    expect(r.count).toBeGreaterThan(50);
    expect(r.count).toBeLessThan(r.total);
    expect(r.maxUsage).toBeLessThanOrEqual(5);
    expect(r.forks).toContain(0);
    expect(r.frozen).toBe(true);
    expect(r.hasPgClass).toBe(true);
  });

  it('agrees with pg_buffercache read at the same moment, buffer for buffer', async () => {
    const r = await inWorker(
      cluster,
      `const q = () => ctx.sql\`SELECT reldatabase::int8 AS d, reltablespace::int8 AS t, relfilenode::int8 AS r, relforknumber AS f,
                                    relblocknumber AS b, isdirty, usagecount FROM pg_buffercache WHERE relfilenode IS NOT NULL\`;
       q(); q();                          // plans and catalogs cached: the comparison itself loads nothing
       const s = ctx.buffers.snapshot();
       const rows = q();
       const snap = new Map();
       for (let i = 0; i < s.count; i++) snap.set(s.database[i] + '/' + s.tablespace[i] + '/' + s.relfilenode[i] + '/' + s.fork[i] + '/' + s.block[i], i);
       let missing = 0, extra = 0, dirtyDiff = 0;
       const seen = new Set();
       for (const row of rows) {
         const k = row.d + '/' + row.t + '/' + row.r + '/' + row.f + '/' + row.b;
         seen.add(k);
         const i = snap.get(k);
         if (i === undefined) { missing++; continue; }
         if ((s.dirty[i] === 1) !== row.isdirty) dirtyDiff++;
       }
       for (const k of snap.keys()) if (!seen.has(k)) extra++;
       return { count: s.count, rows: rows.length, missing, extra, dirtyDiff, dirty: s.dirty.reduce((a, b) => a + b, 0) };`,
    );
    // a quiet cluster (autovacuum off, nothing else running): the same buffers
    expect(r.rows).toBe(r.count);
    expect(r.missing).toBe(0);
    expect(r.extra).toBe(0);
    // the background writer may clean a buffer in between
    expect(r.dirtyDiff).toBeLessThanOrEqual(5);
  });
});

describe('stats', () => {
  it('counts used, dirty and pinned buffers like pg_buffercache', async () => {
    const r = await inWorker(
      cluster,
      `const sql = () => ctx.sql\`SELECT count(*) FILTER (WHERE relfilenode IS NOT NULL)::int AS used,
                                  count(*) FILTER (WHERE isdirty)::int AS dirty,
                                  count(*)::int AS total, avg(usagecount) FILTER (WHERE relfilenode IS NOT NULL)::float8 AS avg
                             FROM pg_buffercache\`[0];
       sql(); sql();                      // plans and catalogs cached
       const st = ctx.buffers.stats();
       const q = sql();
       return { st, q, frozen: Object.isFrozen(st) };`,
    );
    expect(r.st.total).toBe(r.q.total);
    expect(r.st.used).toBe(r.q.used);
    expect(r.st.unused).toBe(r.st.total - r.st.used);
    expect(Math.abs(r.st.dirty - r.q.dirty)).toBeLessThanOrEqual(5);
    // the worker holds no pin between statements; the server's own processes may hold a few
    // (the checkpointer or autovacuum, at that instant)
    expect(r.st.pinned).toBeGreaterThanOrEqual(0);
    expect(r.st.pinned).toBeLessThanOrEqual(5);
    expect(r.st.usageAverage).toBeGreaterThan(0);
    expect(Math.abs(r.st.usageAverage - r.q.avg)).toBeLessThan(0.25);
    expect(r.frozen).toBe(true);
  });

  it('sees buffers dirtied by an UPDATE, and clean again after a CHECKPOINT', async () => {
    const r = await inWorker(
      cluster,
      `ctx.sql\`CHECKPOINT\`;
       const before = ctx.buffers.stats().dirty;
       ctx.sql\`UPDATE t_page SET pad = pad\`;
       const after = ctx.buffers.stats().dirty;
       ctx.sql\`CHECKPOINT\`;
       return { before, after, clean: ctx.buffers.stats().dirty };`,
    );
    expect(r.after - r.before).toBeGreaterThan(40);
    expect(r.clean).toBeLessThan(r.after);
  });
});

describe('residency', () => {
  it('shows a table out of shared_buffers, then all of it after a seq scan', async () => {
    const blocks = await blocksOf('t_scan');
    expect(blocks).toBeGreaterThan(300);
    expect(await inWorker(cluster, `return ctx.buffers.residency('t_scan')`)).toEqual({ blocks, cached: 0 });
    await cluster.query('SELECT count(*) FROM t_scan');
    expect(await inWorker(cluster, `return ctx.buffers.residency('t_scan')`)).toEqual({ blocks, cached: blocks });
    expect((await cachedBlocks('t_scan')).length).toBe(blocks);
  });

  it('takes an oid, a schema-qualified or quoted name, a search_path name and a fork', async () => {
    const r = await inWorker(
      cluster,
      `const oid = Number(ctx.sql\`SELECT 't_scan'::regclass::oid::int8 AS o\`[0].o);
       const byOid = ctx.buffers.residency(oid);
       const qualified = ctx.buffers.residency('public.t_scan');
       const mixed = ctx.buffers.residency('s2."Mixed Case"');
       ctx.sql\`SET search_path = s2, public\`;
       const viaPath = ctx.buffers.residency('"Mixed Case"');
       ctx.sql\`RESET search_path\`;
       return { byOid, qualified, mixed, viaPath, vm: ctx.buffers.residency('t_scan', 'vm'), fsm: ctx.buffers.residency('t_page', 'fsm') };`,
    );
    expect(r.byOid).toEqual(r.qualified);
    expect(r.mixed.blocks).toBeGreaterThan(0);
    expect(r.viaPath).toEqual(r.mixed);
    expect(r.vm).toEqual({ blocks: 0, cached: 0 }); // never vacuumed: no visibility map yet
    expect(r.fsm.blocks).toBeGreaterThan(0);
  });
});

describe('prewarm', () => {
  it('reads a whole table into shared_buffers and returns the block count', async () => {
    const blocks = await blocksOf('t_whole');
    expect(await cachedBlocks('t_whole')).toEqual([]);
    expect(await inWorker(cluster, `return ctx.buffers.prewarm('t_whole')`)).toBe(blocks);
    expect((await cachedBlocks('t_whole')).length).toBe(blocks);
    // pg_prewarm reports the same count for the same table
    await cluster.query('CREATE EXTENSION IF NOT EXISTS pg_prewarm');
    expect(await cluster.query("SELECT pg_prewarm('t_whole')::int AS n")).toEqual([{ n: blocks }]);
  });

  it('reads a block range, and only that range', async () => {
    expect(await cachedBlocks('t_range')).toEqual([]);
    expect(await inWorker(cluster, `return ctx.buffers.prewarm('t_range', { first: 10, last: 19 })`)).toBe(10);
    expect(await cachedBlocks('t_range')).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(await inWorker(cluster, `return ctx.buffers.prewarm('t_range', { fork: 'main', first: 5, last: 5 })`)).toBe(1);
    const blocks = await blocksOf('t_range');
    expect(await inWorker(cluster, `return ctx.buffers.prewarm('t_range', { first: ${blocks - 3} })`)).toBe(3);
    expect(await inWorker(cluster, `return ctx.buffers.prewarm('t_range', { last: 1 })`)).toBe(2);
    expect(await cachedBlocks('t_range')).toEqual([0, 1, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, blocks - 3, blocks - 2, blocks - 1]);
    expect(await inWorker(cluster, `return ctx.buffers.prewarm('t_page', { fork: 'fsm' })`)).toBeGreaterThan(0);
  });

  it('inside ctx.transaction, a failed call leaves the transaction usable', async () => {
    const r = await inWorker(
      cluster,
      `return ctx.transaction((tx) => {
         tx.sql\`CREATE TABLE tx_probe (x int)\`;
         let code = null;
         try { ctx.buffers.prewarm('no_such_table'); } catch (e) { code = e.code; }
         const n = ctx.buffers.prewarm('tx_probe');
         tx.sql\`INSERT INTO tx_probe VALUES (1)\`;
         return { code, n };
       });`,
    );
    expect(r).toEqual({ code: '42P01', n: 0 });
    expect(await cluster.query('SELECT x FROM tx_probe')).toEqual([{ x: 1 }]);
  });
});

describe('readPage', () => {
  it('returns the same bytes as get_raw_page for main and fsm forks', async () => {
    const r = await inWorker(
      cluster,
      `const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
       const out = {};
       for (const [fork, block] of [['main', 0], ['main', 7], ['fsm', 0]]) {
         const mine = ctx.buffers.readPage('t_page', block, fork);
         const theirs = ctx.sql\`SELECT get_raw_page('t_page', \${fork}, \${block}) AS p\`[0].p;
         out[fork + block] = { len: mine.length, ctor: mine.constructor.name, same: same(mine, theirs) };
       }
       return out;`,
    );
    for (const k of ['main0', 'main7', 'fsm0']) expect(r[k], k).toEqual({ len: 8192, ctor: 'Uint8Array', same: true });
  });
});

describe('memory', () => {
  it('results are garbage collected inside a synchronous loop (no build-up until the event loop turns)', async () => {
    const r = await inWorker(
      cluster,
      // RssAnon: an idle worker has unmapped its libraries' start-up pages, which the loop maps again
      `const rss = () => Number(/RssAnon:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
       const before = rss();
       for (let i = 0; i < 20000; i++) { ctx.buffers.readPage('t_page', i % 10); ctx.buffers.snapshot(); }
       return rss() - before;`,
    );
    // kept, 20000 pages alone would be 160 MB and the snapshots gigabytes; below that, the growth is
    // the heap V8 chooses to keep between collections (up to ~70 MB seen on a loaded machine)
    expect(r).toBeLessThan(128 * 1024 * 1024);
  });
});

describe('errors', () => {
  const cases: [string, string, RegExp][] = [
    [`ctx.buffers.residency('no_such_table')`, '42P01', /relation "no_such_table" does not exist/],
    [`ctx.buffers.prewarm('nope.t_scan')`, '3F000', /schema "nope" does not exist/],
    [`ctx.buffers.readPage('no_such_table', 0)`, '42P01', /does not exist/],
    [`ctx.buffers.readPage('a.b.c.d', 0)`, '42601', /improper relation name/],
    [`ctx.buffers.readPage('t_scan', 100000)`, '22023', /block number 100000 is out of range for relation "t_scan"/],
    [`ctx.buffers.prewarm('t_scan', { first: 100000 })`, '22023', /starting block number must be between 0 and \d+/],
    [`ctx.buffers.prewarm('t_scan', { last: 100000 })`, '22023', /ending block number must be between 0 and \d+/],
    [`ctx.buffers.prewarm('t_scan', { first: -1 })`, '22023', /starting block number/],
    [`ctx.buffers.prewarm('t_scan', { fork: 'vm' })`, '22023', /fork "vm" does not exist for this relation/],
    [`ctx.buffers.residency('t_scan', 'nope')`, '22023', /invalid fork name/],
    [`ctx.buffers.prewarm('v')`, '42809', /relation "v" has no storage/],
    [`ctx.buffers.residency(4000000000)`, '42P01', /relation with OID 4000000000 does not exist/],
  ];
  for (const [code, sqlstate, message] of cases) {
    it(`${code} → ${sqlstate}`, async () => {
      const e = await inWorkerError(cluster, code);
      expect(e.isPgError).toBe(true);
      expect(e.code).toBe(sqlstate);
      expect(e.message).toMatch(message);
    });
  }

  it('a dropped relation, by oid, is 42P01', async () => {
    const e = await inWorkerError(
      cluster,
      `ctx.sql\`CREATE TABLE doomed AS SELECT 1 AS x\`;
       const oid = Number(ctx.sql\`SELECT 'doomed'::regclass::oid::int8 AS o\`[0].o);
       ctx.buffers.prewarm(oid);
       ctx.sql\`DROP TABLE doomed\`;
       ctx.buffers.readPage(oid, 0);`,
    );
    expect(e).toMatchObject({ isPgError: true, code: '42P01' });
    expect(e.message).toMatch(/relation with OID \d+ does not exist/);
  });

  it('bad argument types are TypeErrors', async () => {
    for (const code of [`ctx.buffers.residency({})`, `ctx.buffers.prewarm('t_scan', { first: 1.5 })`, `ctx.buffers.readPage('t_scan')`, `ctx.buffers.residency(-1)`, `ctx.buffers.prewarm('t_scan', 'main')`]) {
      const e = await inWorkerError(cluster, code);
      expect(e.name, code).toBe('TypeError');
    }
  });
});

describe('privileges (a worker running as a non-superuser role)', () => {
  const plain = (code: string) => inWorker(cluster, code, 'plaindb');
  const plainError = (code: string) => inWorkerError(cluster, code, 'plaindb');

  it('snapshot, stats and residency need pg_monitor; readPage needs a superuser', async () => {
    for (const code of [`ctx.buffers.snapshot()`, `ctx.buffers.stats()`, `ctx.buffers.residency('t_secret')`]) {
      const e = await plainError(code);
      expect(e.code, code).toBe('42501');
      expect(e.message).toMatch(/permission denied to read shared_buffers/);
      expect(e.hint).toMatch(/pg_monitor/);
    }
    expect(await plainError(`ctx.buffers.readPage('t_secret', 0)`)).toMatchObject({ code: '42501', message: 'must be superuser to use raw page functions' });

    await cluster.query('GRANT pg_monitor TO plain');
    const r = await plain(`return { n: ctx.buffers.snapshot().count, used: ctx.buffers.stats().used, res: ctx.buffers.residency('t_secret').blocks }`);
    expect(r.n).toBeGreaterThan(0);
    expect(r.used).toBeGreaterThan(0);
    expect(r.res).toBeGreaterThan(0);
    expect(await plainError(`ctx.buffers.readPage('t_secret', 0)`)).toMatchObject({ code: '42501' });
    await cluster.query('REVOKE pg_monitor FROM plain');
    expect(await plainError(`ctx.buffers.stats()`)).toMatchObject({ code: '42501' });
  });

  it('prewarm needs SELECT on the relation, like pg_prewarm', async () => {
    await cluster.query('ALTER TABLE t_secret OWNER TO postgres', [], 'plaindb');
    expect(await plainError(`ctx.buffers.prewarm('t_secret')`)).toMatchObject({ code: '42501', message: 'permission denied for table t_secret' });
    await cluster.query('GRANT SELECT ON t_secret TO plain', [], 'plaindb');
    expect(await plain(`return ctx.buffers.prewarm('t_secret')`)).toBeGreaterThan(0);
  });
});
