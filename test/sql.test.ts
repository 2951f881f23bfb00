/**
 * ctx.sql and ctx.transaction inside a real worker: type conversion both
 * ways, PgError fields, transactions and savepoints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from './helpers/cluster';
import { evaluatorCluster, inWorker, inWorkerError } from './helpers/evalWorker';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await evaluatorCluster();
}, 60000);

afterAll(async () => {
  await cluster?.destroy();
});

describe('values from PostgreSQL to JS', () => {
  it('converts every type in the table', async () => {
    const row = await inWorker(
      cluster,
      `const r = ctx.sql\`SELECT
        1::int2 AS i2, (-2147483648)::int4 AS i4, 1.5::float4 AS f4, 'NaN'::float8 AS nan, 1e300::float8 AS f8,
        9223372036854775807::int8 AS i8, 12345678901234567890.12345::numeric AS num,
        true AS t, false AS f, 'héllo'::text AS txt, 'v'::varchar(3) AS vc, 'ab'::char(4) AS bp, 'nm'::name AS nm,
        '{"a":[1,{"b":null}]}'::json AS js, '{"z":1,"a":"x"}'::jsonb AS jb, '"str"'::jsonb AS jstr,
        '\\\\x00ff10'::bytea AS ba, ''::bytea AS empty,
        '2024-02-29'::date AS d, '2024-02-29 13:14:15.678'::timestamp AS ts, '2024-02-29 13:14:15.678+02'::timestamptz AS tstz,
        'infinity'::timestamptz AS inf, '-infinity'::date AS ninf,
        ARRAY[1,NULL,3]::int4[] AS ai, ARRAY[[1,2],[3,4]]::int8[] AS a2, ARRAY['a','b"c']::text[] AS at, '{}'::int4[] AS aempty,
        ARRAY['{"k":1}'::jsonb] AS aj, ARRAY['2024-01-01'::date] AS ad,
        NULL::int4 AS n, '1 day'::interval AS iv, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '(1,2)'::point AS pt\`;
      return r[0];`,
    );
    expect(row.i2).toBe(1);
    expect(row.i4).toBe(-2147483648);
    expect(row.f4).toBe(1.5);
    expect(Number.isNaN(row.nan)).toBe(true);
    expect(row.f8).toBe(1e300);
    expect(row.i8).toBe(9223372036854775807n);
    expect(row.num).toBe('12345678901234567890.12345');
    expect(row.t).toBe(true);
    expect(row.f).toBe(false);
    expect(row.txt).toBe('héllo');
    expect(row.vc).toBe('v');
    expect(row.bp).toBe('ab  ');
    expect(row.nm).toBe('nm');
    expect(row.js).toEqual({ a: [1, { b: null }] });
    expect(row.jb).toEqual({ a: 'x', z: 1 });
    expect(row.jstr).toBe('str');
    expect(row.ba).toEqual(Uint8Array.from([0, 255, 16]));
    expect(row.empty).toEqual(new Uint8Array(0));
    expect(row.d).toEqual(new Date(Date.UTC(2024, 1, 29)));
    expect(row.ts).toEqual(new Date(Date.UTC(2024, 1, 29, 13, 14, 15, 678)));
    expect(row.tstz).toEqual(new Date(Date.UTC(2024, 1, 29, 11, 14, 15, 678)));
    expect(row.inf).toBe('infinity');
    expect(row.ninf).toBe('-infinity');
    expect(row.ai).toEqual([1, null, 3]);
    expect(row.a2).toEqual([[1n, 2n], [3n, 4n]]);
    expect(row.at).toEqual(['a', 'b"c']);
    expect(row.aempty).toEqual([]);
    expect(row.aj).toEqual([{ k: 1 }]);
    expect(row.ad).toEqual([new Date(Date.UTC(2024, 0, 1))]);
    expect(row.n).toBeNull();
    expect(row.iv).toBe('1 day');
    expect(row.u).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(row.pt).toBe('(1,2)');
  });

  it('returns Uint8Array (not a plain object) for bytea', async () => {
    const ctor = await inWorker(cluster, "return ctx.sql`SELECT '\\\\x01'::bytea AS b`[0].b.constructor.name");
    expect(ctor).toBe('Uint8Array');
  });

  it('reports count, command and columns', async () => {
    const r = await inWorker(
      cluster,
      `ctx.sql\`CREATE TEMP TABLE IF NOT EXISTS cnt (x int)\`;
       const ins = ctx.sql\`INSERT INTO cnt SELECT generate_series(1, 5)\`;
       const upd = ctx.sql\`UPDATE cnt SET x = x + 1 WHERE x > 2\`;
       const sel = ctx.sql\`SELECT x AS a, x * 2 AS b FROM cnt ORDER BY x LIMIT 2\`;
       const del = ctx.sql\`DELETE FROM cnt\`;
       return { ins: [ins.command, ins.count], upd: [upd.command, upd.count], sel: [sel.command, sel.count, sel.columns, sel.length], del: [del.command, del.count] };`,
    );
    expect(r).toEqual({
      ins: ['INSERT', 5],
      upd: ['UPDATE', 3],
      sel: ['SELECT', 2, ['a', 'b'], 2],
      del: ['DELETE', 5],
    });
  });
});

describe('values from JS to PostgreSQL', () => {
  it('round-trips every type as a bound parameter', async () => {
    const r = await inWorker(
      cluster,
      `const d = new Date(Date.UTC(2024, 1, 29, 13, 14, 15, 678));
       const r = ctx.sql\`SELECT \${1}::int2 AS i2, \${-5}::int4 AS i4, \${1.5}::float4 AS f4, \${0.1}::float8 AS f8,
         \${9007199254740993n}::int8 AS i8, \${'12345678901234567890.5'}::numeric AS num, \${0.1}::numeric AS numf,
         \${true}::bool AS b, \${"it's \\"q\\""}::text AS t, \${{ a: [1, 'x'] }}::jsonb AS jb, \${[1, 2]}::json AS js, \${'{"raw":1}'}::jsonb AS jraw,
         \${new Uint8Array([0, 1, 255])}::bytea AS ba, \${d}::date AS dd, \${d}::timestamp AS ts, \${d}::timestamptz AS tz,
         \${[1, null, 3]}::int4[] AS ai, \${[['a', 'b,c'], ['d"', null]]}::text[] AS at, \${[d]}::timestamptz[] AS adt,
         \${null}::int4 AS n, \${undefined}::text AS u, \${'1 day'}::interval AS iv, \${42} AS untyped\`;
       return r[0];`,
    );
    expect(r).toEqual({
      i2: 1,
      i4: -5,
      f4: 1.5,
      f8: 0.1,
      i8: 9007199254740993n,
      num: '12345678901234567890.5',
      numf: '0.1',
      b: true,
      t: `it's "q"`,
      jb: { a: [1, 'x'] },
      js: [1, 2],
      jraw: { raw: 1 },
      ba: Uint8Array.from([0, 1, 255]),
      dd: new Date(Date.UTC(2024, 1, 29)),
      ts: new Date(Date.UTC(2024, 1, 29, 13, 14, 15, 678)),
      tz: new Date(Date.UTC(2024, 1, 29, 13, 14, 15, 678)),
      ai: [1, null, 3],
      at: [['a', 'b,c'], ['d"', null]],
      adt: [new Date(Date.UTC(2024, 1, 29, 13, 14, 15, 678))],
      n: null,
      u: null,
      iv: '1 day',
      untyped: '42',
    });
  });

  it('binds parameters instead of interpolating text', async () => {
    const r = await inWorker(cluster, "const evil = \"'; DROP TABLE pgnw_jobs; --\"; return ctx.sql`SELECT ${evil} AS v`[0].v");
    expect(r).toBe("'; DROP TABLE pgnw_jobs; --");
  });

  it('sql.unsafe runs raw text, with or without parameters', async () => {
    const r = await inWorker(
      cluster,
      `ctx.sql.unsafe('CREATE TEMP TABLE IF NOT EXISTS u1 (x int); INSERT INTO u1 VALUES (1), (2)');
       return [ctx.sql.unsafe('SELECT count(*)::int AS n FROM u1')[0].n, ctx.sql.unsafe('SELECT $1::int + $2::int AS s', [2, 3])[0].s];`,
    );
    expect(r).toEqual([2, 5]);
  });

  it('gives a PostgreSQL error for a value the type rejects', async () => {
    const e = await inWorkerError(cluster, 'ctx.sql`SELECT ${3000000000}::int4`');
    expect(e.isPgError).toBe(true);
    expect(e.code).toBe('22003');
    const e2 = await inWorkerError(cluster, "ctx.sql`SELECT ${'abc'}::int4`");
    expect(e2.code).toBe('22P02');
  });

  it('refuses values that cannot be sent, with a TypeError', async () => {
    const e = await inWorkerError(cluster, 'ctx.sql`SELECT ${() => 1}::text`');
    expect(e.name).toBe('TypeError');
    expect(e.isPgError).toBe(false);
  });

  it('sends an object for a bool as its JSON, as node-postgres does: the server refuses it, a circular one is a TypeError', async () => {
    // not as its truthiness (always true)
    const e = await inWorkerError(cluster, 'ctx.sql`SELECT ${{ a: 1 }}::bool`');
    expect(e).toMatchObject({ isPgError: true, code: '22P02' });
    const e2 = await inWorkerError(cluster, 'const o = { a: 1 }; o.self = o; ctx.sql`SELECT ${o}::bool`');
    expect(e2).toMatchObject({ name: 'TypeError', isPgError: false });
    const e3 = await inWorkerError(cluster, 'ctx.sql`SELECT ${{ n: 1n }}::bool`');
    expect(e3).toMatchObject({ name: 'TypeError', isPgError: false });
    expect(await inWorker(cluster, 'return ctx.sql`SELECT ${false}::bool AS a, ${1}::bool AS b`[0]')).toEqual({ a: false, b: true });
  });
});

describe('PgError', () => {
  it('has node-postgres fields for a unique violation, and the worker goes on', async () => {
    const e = await inWorkerError(
      cluster,
      `ctx.sql\`CREATE TABLE IF NOT EXISTS uq (id int CONSTRAINT uq_pkey PRIMARY KEY)\`;
       ctx.sql\`INSERT INTO uq VALUES (1) ON CONFLICT DO NOTHING\`;
       ctx.sql\`INSERT INTO uq VALUES (1)\`;`,
    );
    expect(e).toMatchObject({
      isPgError: true,
      name: 'PgError',
      code: '23505',
      severity: 'ERROR',
      schema: 'public',
      table: 'uq',
      constraint: 'uq_pkey',
      detail: 'Key (id)=(1) already exists.',
    });
    expect(e.message).toMatch(/duplicate key value violates unique constraint "uq_pkey"/);
    expect(await inWorker(cluster, 'return ctx.sql`SELECT 2 AS two`[0].two')).toBe(2);
  });

  it('has code and position for a syntax error', async () => {
    const e = await inWorkerError(cluster, 'ctx.sql`SELECT * FORM nowhere`');
    expect(e.code).toBe('42601');
    expect(e.position).toBe('10');
    expect(e.message).toMatch(/syntax error at or near "FORM"/);
    expect(await inWorker(cluster, 'return ctx.sql`SELECT 3 AS x`[0].x')).toBe(3);
  });

  it('is the PgError exported by pg-node-worker', async () => {
    const r = await inWorker(cluster, 'try { ctx.sql`SELECT 1/0` } catch (e) { return [e instanceof PgError, e instanceof Error, e.code] }');
    expect(r).toEqual([true, true, '22012']);
  });
});

describe('transactions', () => {
  beforeAll(async () => {
    await inWorker(cluster, 'ctx.sql`CREATE TABLE IF NOT EXISTS tx (k text PRIMARY KEY)`');
  });

  it('commits when the callback returns', async () => {
    const r = await inWorker(
      cluster,
      `const v = ctx.transaction(tx => { tx.sql\`INSERT INTO tx VALUES ('c1')\`; tx.sql\`INSERT INTO tx VALUES ('c2')\`; return 7; });
       return v;`,
    );
    expect(r).toBe(7);
    expect(await cluster.query("SELECT k FROM tx WHERE k LIKE 'c%' ORDER BY k")).toEqual([{ k: 'c1' }, { k: 'c2' }]);
  });

  it('rolls back everything when the callback throws', async () => {
    const e = await inWorkerError(
      cluster,
      `ctx.transaction(tx => { tx.sql\`INSERT INTO tx VALUES ('r1')\`; throw new RangeError('boom'); });`,
    );
    expect(e).toMatchObject({ name: 'RangeError', message: 'boom' });
    expect(await cluster.query("SELECT k FROM tx WHERE k = 'r1'")).toEqual([]);
  });

  it('rolls back when a statement fails, and reports it on commit if the error was swallowed', async () => {
    const e = await inWorkerError(
      cluster,
      `ctx.transaction(tx => {
         tx.sql\`INSERT INTO tx VALUES ('s1')\`;
         try { tx.sql\`INSERT INTO tx VALUES ('s1')\`; } catch (err) { /* swallowed */ }
         let again; try { tx.sql\`SELECT 1\`; } catch (err) { again = err.code; }
         if (again !== '25P02') throw new Error('expected 25P02, got ' + again);
       });`,
    );
    expect(e.code).toBe('25P02');
    expect(e.message).toMatch(/rolled back/);
    expect(await cluster.query("SELECT k FROM tx WHERE k = 's1'")).toEqual([]);
  });

  it('a deferred constraint failing at the commit of a statement or a transaction is a PgError; nothing commits and the worker goes on', async () => {
    const r = await inWorker(
      cluster,
      `ctx.sql\`CREATE TABLE IF NOT EXISTS dfr (id int, CONSTRAINT dfr_u UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)\`;
       const codes = [];
       for (const run of [
         () => ctx.sql\`INSERT INTO dfr VALUES (1), (1)\`,
         () => ctx.sql\`INSERT INTO dfr VALUES (2), (2) RETURNING id\`,
         () => ctx.sql\`INSERT INTO dfr VALUES (3), (3) RETURNING ARRAY[id] AS a\`,
         () => ctx.sql.unsafe('INSERT INTO dfr VALUES (4), (4) RETURNING id'),
         () => ctx.transaction(tx => { tx.sql\`INSERT INTO dfr VALUES (5), (5) RETURNING id\`; }),
         () => ctx.transaction(tx => tx.transaction(sp => sp.sql\`INSERT INTO dfr VALUES (6), (6) RETURNING id\`)),
       ]) {
         try { run(); codes.push('committed'); } catch (e) { codes.push(e.code); }
         codes.push(ctx.sql\`SELECT count(*)::int AS n FROM dfr\`[0].n);
       }
       ctx.sql\`INSERT INTO dfr VALUES (7)\`;
       return codes.concat(ctx.sql\`SELECT array_agg(id) AS ids FROM dfr\`[0].ids);`,
    );
    expect(r).toEqual(['23505', 0, '23505', 0, '23505', 0, '23505', 0, '23505', 0, '23505', 0, 7]);
  });

  it('uses a savepoint for a nested transaction', async () => {
    await inWorker(
      cluster,
      `ctx.transaction(tx => {
         tx.sql\`INSERT INTO tx VALUES ('n-outer')\`;
         try {
           tx.transaction(sp => { sp.sql\`INSERT INTO tx VALUES ('n-inner')\`; sp.sql\`INSERT INTO tx VALUES ('n-outer')\`; });
         } catch (err) { if (err.code !== '23505') throw err; }
         tx.transaction(sp => { sp.sql\`INSERT INTO tx VALUES ('n-kept')\`; });
       });`,
    );
    expect(await cluster.query("SELECT k FROM tx WHERE k LIKE 'n-%' ORDER BY k")).toEqual([{ k: 'n-kept' }, { k: 'n-outer' }]);
  });

  it('thousands of statements and cursor batches in one transaction leave no memory behind, savepoints and failures included', async () => {
    const logFrom = cluster.log().length;
    const r = await inWorker(
      cluster,
      `// the worker's own PostgreSQL memory, all contexts
       const pgBytes = (sql) => Number(sql\`SELECT sum(total_bytes)::int8 AS b FROM pg_backend_memory_contexts\`[0].b);
       const big = 'x'.repeat(4000);
       const out = {};
       ctx.transaction(tx => {
         // each statement allocates ~10 kB: a 4 kB text parameter, its datum, a 500-element array
         const one = (i) => tx.sql\`SELECT length(\${big}::text) AS n, array_fill(\${i}::int, ARRAY[500]) AS a\`[0];
         for (let i = 0; i < 200; i++) one(i);
         const before = pgBytes(tx.sql);
         let n = 0;
         for (let i = 0; i < 3000; i++) n += one(i).a.length;
         // 150 batches of 1000 rows of text: each batch a table of ~80 kB
         for (const rows of tx.sql.cursor(1000)\`SELECT i, md5(i::text) AS h FROM generate_series(1, 150000) i\`) n += rows.length;
         // failures inside savepoints, and statements at depth 2 after them
         for (let i = 0; i < 200; i++) {
           try { tx.transaction(sp => { one(i); sp.sql\`SELECT 1 / \${i - i}::int\`; }); } catch (e) { if (e.code !== '22012') throw e; }
           tx.transaction(sp => sp.sql\`SELECT \${i}::int AS i\`);
         }
         out.n = n;
         out.grewMb = (pgBytes(tx.sql) - before) / 1e6;
       });
       // a transaction whose first statement is inside a savepoint, then one that fails at depth 1
       ctx.transaction(tx => tx.transaction(sp => sp.sql\`SELECT 1\`));
       try { ctx.transaction(tx => { tx.sql\`SELECT 1\`; tx.sql\`SELECT 1 / 0\`; }); } catch (e) { out.failed = e.code; }
       out.after = ctx.transaction(tx => tx.sql\`SELECT 2 AS v\`[0].v);
       return out;`,
      'postgres',
      60000,
    );
    expect(r.n).toBe(3000 * 500 + 150000);
    expect(r.failed).toBe('22012');
    expect(r.after).toBe(2);
    // kept until the commit, the statements' memory would be ~30 MB and the batches' ~12 MB
    expect(r.grewMb).toBeLessThan(4);
    expect(cluster.log().slice(logFrom)).not.toMatch(/SPI stack|leak|still active/);
  }, 90000);

  it('refuses a callback that returns a promise, and rolls it back', async () => {
    const e = await inWorkerError(
      cluster,
      `ctx.transaction((tx) => { tx.sql\`INSERT INTO tx VALUES ('p1')\`; return new Promise(r => setTimeout(r, 1)); });`,
    );
    expect(e.name).toBe('TypeError');
    expect(e.message).toMatch(/returned a promise/);
    expect(await cluster.query("SELECT k FROM tx WHERE k = 'p1'")).toEqual([]);
  });

  it('refuses an async callback before starting', async () => {
    const e = await inWorkerError(cluster, 'ctx.transaction(async (tx) => { tx.sql`SELECT 1`; });');
    expect(e.name).toBe('TypeError');
    expect(e.message).toMatch(/synchronous/);
  });

  it('refuses the sql of a transaction that ended', async () => {
    const e = await inWorkerError(cluster, 'let keep; ctx.transaction(tx => { keep = tx; }); keep.sql`SELECT 1`;');
    expect(e.message).toMatch(/transaction has ended/);
  });

  it('refuses transaction control statements in sql', async () => {
    const e = await inWorkerError(cluster, "ctx.sql.unsafe('COMMIT')");
    expect(e.isPgError).toBe(true);
    expect(e.message).toMatch(/transaction control statements are not allowed/);
  });
});

describe('cursors', () => {
  it('iterates a result in batches inside a transaction, with parameters', async () => {
    const r = await inWorker(
      cluster,
      `return ctx.transaction(tx => {
         const sizes = []; let sum = 0;
         for (const rows of tx.sql.cursor(400)\`SELECT i FROM generate_series(1, \${1000}::int) i\`) {
           sizes.push(rows.length); for (const row of rows) sum += row.i;
         }
         return { sizes, sum };
       });`,
    );
    expect(r).toEqual({ sizes: [400, 400, 200], sum: 500500 });
  });

  it('closes the cursor on break, and the transaction goes on', async () => {
    const r = await inWorker(
      cluster,
      `return ctx.transaction(tx => {
         let first;
         for (const rows of tx.sql.cursor\`SELECT i FROM generate_series(1, 5000) i\`) { first = rows.length; break; }
         const open = tx.sql\`SELECT count(*)::int AS n FROM pg_cursors\`[0].n;
         return { first, open };
       });`,
    );
    expect(r).toEqual({ first: 1000, open: 0 });
  });

  it('keeps the JS heap flat over 300k rows, unlike one big result', async () => {
    const r = await inWorker(
      cluster,
      `// what the worker holds on to: the heap without the young generation, whose garbage is
       // bounded by its size (up to 16 MB per semi-space), whatever the number of rows
       const v8 = require('v8');
       const held = () => process.memoryUsage().heapUsed -
         (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_used_size ?? 0);
       const base = held(), baseUsed = process.memoryUsage().heapUsed;
       let peak = 0, n = 0;
       ctx.transaction(tx => {
         for (const rows of tx.sql.cursor(2000)\`SELECT i, md5(i::text) AS h FROM generate_series(1, 300000) i\`) {
           n += rows.length;
           peak = Math.max(peak, held() - base);
         }
       });
       const all = ctx.sql\`SELECT i, md5(i::text) AS h FROM generate_series(1, 300000) i\`;
       // the whole result, wherever V8 keeps it
       const eager = process.memoryUsage().heapUsed - baseUsed;
       return { n, peakMb: peak / 1e6, eagerMb: eager / 1e6, eagerRows: all.length };`,
    );
    expect(r.n).toBe(300000);
    expect(r.eagerRows).toBe(300000);
    // a 2000-row batch is well under 10 MB; the whole result is tens of MB
    expect(r.peakMb).toBeLessThan(r.eagerMb / 3);
  });

  it('is refused outside a transaction with a hint', async () => {
    const e = await inWorkerError(cluster, 'for (const rows of ctx.sql.cursor`SELECT 1`) {}');
    expect(e.code).toBe('25000');
    expect(e.message).toMatch(/only be used inside a transaction/);
  });

  it('reports a failing statement as a PgError and rolls back', async () => {
    const e = await inWorkerError(
      cluster,
      'ctx.transaction(tx => { for (const rows of tx.sql.cursor`SELECT 1 / (i - 3) FROM generate_series(1, 5) i`) {} })',
    );
    expect(e.code).toBe('22012');
  });
});

describe('plan cache, cached column names and big results', () => {
  it('sees added, dropped, retyped and renamed columns through a cached SELECT * (1 row and 20 rows)', async () => {
    const r = await inWorker(
      cluster,
      `const out = [];
       for (const n of [1, 20]) {
         ctx.sql\`DROP TABLE IF EXISTS pi\`;
         ctx.sql\`CREATE TABLE pi (a int, b text)\`;
         ctx.sql\`INSERT INTO pi SELECT i, 'x' || i FROM generate_series(1, \${n}::int) i\`;
         // one call site: the same TemplateStringsArray, so the same cached plan and column names
         const q = () => ctx.sql\`SELECT * FROM pi ORDER BY 1\`;
         const snap = (rows) => ({ columns: [...rows.columns], first: rows[0], last: rows[rows.length - 1], n: rows.length });
         const steps = [snap(q()), snap(q())];
         ctx.sql\`ALTER TABLE pi ADD COLUMN c int DEFAULT 7\`;
         steps.push(snap(q()));
         ctx.sql\`ALTER TABLE pi DROP COLUMN b\`;
         steps.push(snap(q()));
         ctx.sql\`ALTER TABLE pi ALTER COLUMN a TYPE text\`;
         steps.push(snap(q()));
         ctx.sql\`ALTER TABLE pi RENAME COLUMN c TO d\`;
         steps.push(snap(q()));
         ctx.transaction((tx) => {
           for (const rows of tx.sql.cursor(8)\`SELECT * FROM pi ORDER BY 1\`) { steps.push(snap(rows)); break; }
         });
         out.push(steps);
       }
       return out;`,
    );
    const expected = (n: number) => {
      const last = (f: (i: number) => object) => f(n);
      return [
        { columns: ['a', 'b'], first: { a: 1, b: 'x1' }, last: last((i) => ({ a: i, b: 'x' + i })), n },
        { columns: ['a', 'b'], first: { a: 1, b: 'x1' }, last: last((i) => ({ a: i, b: 'x' + i })), n },
        { columns: ['a', 'b', 'c'], first: { a: 1, b: 'x1', c: 7 }, last: last((i) => ({ a: i, b: 'x' + i, c: 7 })), n },
        { columns: ['a', 'c'], first: { a: 1, c: 7 }, last: last((i) => ({ a: i, c: 7 })), n },
        // text sorts '1' < '10' < ... < '9'
        { columns: ['a', 'c'], first: { a: '1', c: 7 }, last: { a: n === 1 ? '1' : '9', c: 7 }, n },
        { columns: ['a', 'd'], first: { a: '1', d: 7 }, last: { a: n === 1 ? '1' : '9', d: 7 }, n },
        { columns: ['a', 'd'], first: { a: '1', d: 7 }, last: n === 1 ? { a: '1', d: 7 } : { a: '16', d: 7 }, n: Math.min(n, 8) },
      ];
    };
    expect(r[0]).toEqual(expected(1));
    expect(r[1]).toEqual(expected(20));
  });

  it('converts every type the same in small and big (column by column) results, NULLs included', async () => {
    const r = await inWorker(
      cluster,
      `const q = (n) => ctx.sql\`SELECT i, (i % 3 = 0) AS b, i::int2 AS i2, i * 1.5::float4 AS f4, i / 4.0::float8 AS f8,
           i::int8 * 10000000000 AS i8, (i / 3.0)::numeric(10, 3) AS num, 'héllo ' || i AS txt, 'ascii' || i AS asc,
           ('"k' || i || '"')::json AS js, jsonb_build_object('i', i, 'ü', ARRAY[i]) AS jb, ('\\\\x' || lpad(to_hex(i), 4, '0'))::bytea AS ba,
           date '2024-01-01' + i AS d, CASE WHEN i = 2 THEN 'infinity'::timestamptz WHEN i = 3 THEN '-infinity' ELSE timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour' END AS ts,
           ARRAY[i, NULL] AS arr, ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid AS u, (i || ' days')::interval AS iv
         FROM generate_series(1, \${n}::int) i\`;
       const withNulls = (n) => ctx.sql\`SELECT CASE WHEN i % 2 = 0 THEN NULL ELSE i END AS i, CASE WHEN i % 2 = 0 THEN NULL ELSE true END AS b,
           CASE WHEN i % 2 = 0 THEN NULL ELSE 'x' END AS t, CASE WHEN i % 2 = 0 THEN NULL ELSE '{"a":1}'::jsonb END AS j,
           CASE WHEN i % 2 = 0 THEN NULL ELSE '\\\\x01'::bytea END AS ba, CASE WHEN i % 2 = 0 THEN NULL ELSE i::int8 END AS i8,
           CASE WHEN i % 2 = 0 THEN NULL ELSE date '2024-01-01' END AS d, CASE WHEN i % 2 = 0 THEN NULL ELSE ARRAY[1] END AS a
         FROM generate_series(1, \${n}::int) i\`;
       const big = q(40);
       const each = [];
       for (let n = 1; n <= 40; n++) each.push(q(n)[n - 1]);
       return { big: [...big], each, bigNulls: [...withNulls(40)], smallNulls: [...withNulls(4)] };`,
    );
    expect(r.big).toHaveLength(40);
    // row n of the 40-row result (built column by column) equals the last row of the n-row result
    // (n <= 16: built value by value; above: column by column too)
    expect(r.big).toEqual(r.each);
    const row2 = r.big[1];
    expect(row2).toEqual({
      i: 2, b: false, i2: 2, f4: 3, f8: 0.5, i8: 20000000000n, num: '0.667', txt: 'héllo 2', asc: 'ascii2', js: 'k2',
      jb: { i: 2, ü: [2] }, ba: Uint8Array.from([0, 2]), d: new Date(Date.UTC(2024, 0, 3)), ts: 'infinity',
      arr: [2, null], u: '00000000-0000-0000-0000-000000000002', iv: '2 days',
    });
    expect(r.big[2].ts).toBe('-infinity');
    expect(r.big[3].ts).toEqual(new Date(Date.UTC(2024, 0, 1, 4)));
    const nullRow = { i: null, b: null, t: null, j: null, ba: null, i8: null, d: null, a: null };
    const fullRow = { i: 1, b: true, t: 'x', j: { a: 1 }, ba: Uint8Array.from([1]), i8: 1n, d: new Date(Date.UTC(2024, 0, 1)), a: [1] };
    expect(r.bigNulls[0]).toEqual(fullRow);
    expect(r.bigNulls[1]).toEqual(nullRow);
    expect(r.bigNulls[38]).toEqual({ ...fullRow, i: 39, i8: 39n });
    expect(r.bigNulls[39]).toEqual(nullRow);
    expect(r.smallNulls[1]).toEqual(nullRow);
    expect(r.smallNulls[2]).toEqual({ ...fullRow, i: 3, i8: 3n });
  });

  it('reads text and JSON columns across chunk boundaries (70,000 rows: typed arrays, 8192-string chunks, NULLs, non-ASCII)', async () => {
    const r = await inWorker(
      cluster,
      `const rows = ctx.sql\`SELECT i, CASE WHEN i % 1000 = 0 THEN NULL ELSE 'é' || i END AS t, CASE WHEN i % 7 = 0 THEN NULL ELSE ('a' || i) END AS a,
           CASE WHEN i % 3 = 0 THEN NULL ELSE jsonb_build_object('i', i) END AS j, i % 2 = 0 AS b, CASE WHEN i % 5 = 0 THEN NULL ELSE i::float8 / 2 END AS f
         FROM generate_series(1, 70000) i\`;
       let bad = 0, first = null;
       for (let k = 0; k < rows.length; k++) {
         const i = k + 1, row = rows[k];
         const ok = row.i === i && row.t === (i % 1000 === 0 ? null : 'é' + i) && row.a === (i % 7 === 0 ? null : 'a' + i) &&
           (i % 3 === 0 ? row.j === null : row.j.i === i) && row.b === (i % 2 === 0) && row.f === (i % 5 === 0 ? null : i / 2);
         if (!ok) { bad++; if (first === null) first = { k, row }; }
       }
       return { n: rows.length, bad, first };`,
    );
    expect(r).toEqual({ n: 70000, bad: 0, first: null });
  });

  it('text values outlive their result: values kept from dropped 100,000-row results read the same after full GCs and later results', async () => {
    const r = await inWorker(
      cluster,
      `const release = require('pg-node-worker').__internal.releaseMemory;
       const kept = [];
       for (let round = 0; round < 4; round++) {
         let rows = ctx.sql\`SELECT i, md5(i::text) || '-' || \${round}::text AS t, CASE WHEN i % 2 = 0 THEN 'short' || i END AS s
                             FROM generate_series(1, 100000) i\`;
         for (const k of [0, 8191, 8192, 50000 + round, 99999]) kept.push(rows[k].t, rows[k].s);
         rows = null;
         release();
       }
       // more big results, so freed memory is reused under the kept values
       for (let round = 0; round < 3; round++) ctx.sql\`SELECT repeat('z', 40) || i AS t FROM generate_series(1, 100000) i\`.length;
       release();
       const crypto = require('crypto');
       let bad = 0;
       for (let round = 0, p = 0; round < 4; round++)
         for (const k of [0, 8191, 8192, 50000 + round, 99999]) {
           const i = k + 1;
           if (kept[p++] !== crypto.createHash('md5').update(String(i)).digest('hex') + '-' + round) bad++;
           if (kept[p++] !== (i % 2 === 0 ? 'short' + i : null)) bad++;
         }
       return { n: kept.length, bad, sample: kept[0] };`,
    );
    expect(r).toEqual({ n: 40, bad: 0, sample: 'c4ca4238a0b923820dcc509a6f75849b-0' });
  });

  it('makes rows with one hidden class, __proto__ as an own column, and frozen shared columns', async () => {
    const r = await inWorker(
      cluster,
      `const big = ctx.sql\`SELECT i AS "__proto__", i AS x FROM generate_series(1, 30) i\`;
       const one = ctx.sql\`SELECT 5 AS "__proto__"\`;
       return {
         own: Object.prototype.hasOwnProperty.call(big[0], '__proto__'), protoOk: Object.getPrototypeOf(big[0]) === Object.prototype,
         value: Object.getOwnPropertyDescriptor(big[29], '__proto__').value, oneOwn: Object.getOwnPropertyDescriptor(one[0], '__proto__').value,
         frozen: Object.isFrozen(big.columns), columns: [...big.columns],
       };`,
    );
    expect(r).toEqual({ own: true, protoOk: true, value: 30, oneOwn: 5, frozen: true, columns: ['__proto__', 'x'] });
  });

  it('never runs an evicted plan: 300 statements through a 256-plan cache, then the first call sites again', async () => {
    const r = await inWorker(
      cluster,
      `const site = (v) => ctx.sql\`SELECT \${v}::int + 1 AS n\`[0].n;
       const before = site(1);
       for (let i = 0; i < 300; i++) {
         const got = ctx.sql.unsafe('SELECT $1::int + ' + i + ' AS n', [i])[0].n;
         if (got !== 2 * i) throw new Error('statement ' + i + ' returned ' + got);
       }
       return [before, site(41), ctx.sql.unsafe('SELECT $1::int + 0 AS n', [5])[0].n];`,
    );
    expect(r).toEqual([2, 42, 5]);
  });

  it('a cached statement whose parameter types change with DDL binds by the new types (an int8 after real keeps its digits)', async () => {
    const r = await inWorker(
      cluster,
      `ctx.sql\`DROP TABLE IF EXISTS pgnw_retype\`;
       ctx.sql\`CREATE TABLE pgnw_retype (id int, v real)\`;
       // one call site: one cached plan, prepared while v is real
       const put = (id, v) => ctx.sql\`INSERT INTO pgnw_retype VALUES (\${id}, \${v})\`;
       const get = (id) => ctx.sql\`SELECT v::text AS t FROM pgnw_retype WHERE id = \${id}\`[0].t;
       put(1, 1.5);
       ctx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE int8\`;
       put(2, 123456789012345678n);
       put(3, 2 ** 60);
       // and inside a transaction, through a cursor too
       ctx.transaction((tx) => {
         tx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE numeric\`;
         put(4, 0.1); // serialised for int8 still: the bridge re-infers and converts by the new type
         put(5, '12345678901234567890.5');
         put(6, 0.3); // serialised for numeric now
         for (const rows of tx.sql.cursor\`SELECT v::text AS t FROM pgnw_retype WHERE v > \${'12345678901234567890'} ORDER BY id\`) globalThis.__seen = rows.map((x) => x.t);
       });
       const before = [get(1), get(2), get(3), get(4), get(5), get(6), globalThis.__seen];
       // text -> int[]: JS serialises an array for text as JSON ('[1,2]'), which int[] refuses;
       // the bridge holds that call and JS sends the value again, as an array literal
       ctx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE text\`;
       const tag = (id, v) => ctx.sql\`UPDATE pgnw_retype SET v = \${v} WHERE id = \${id}\`;
       tag(1, 'x');
       ctx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE int[] USING NULL\`;
       let first;
       try { tag(1, [1, 2]); first = ctx.sql\`SELECT v FROM pgnw_retype WHERE id = 1\`[0].v; } catch (e) { first = e.code; }
       // inside a transaction, where a failed statement would end the level, and through a cursor
       const inTx = ctx.transaction((tx) => {
         tx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE text USING NULL\`;
         tag(1, [5, 6]); // text: sent as JSON
         tx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE int[] USING NULL\`;
         tag(1, [7, 8]);
         const seen = [];
         const find = (v) => { for (const rows of tx.sql.cursor\`SELECT id FROM pgnw_retype WHERE v = \${v}\`) seen.push(...rows.map((x) => x.id)); };
         tx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE text USING v::text\`;
         find('{7,8}');
         tx.sql\`ALTER TABLE pgnw_retype ALTER COLUMN v TYPE int[] USING v::int[]\`;
         find([7, 8]);
         return seen;
       });
       return [...before, first, inTx, ctx.sql\`SELECT v FROM pgnw_retype WHERE id = 1\`[0].v];`,
    );
    expect(r.slice(0, 7)).toEqual(['2', '123456789012345678', '1152921504606846976', '0.1', '12345678901234567890.5', '0.3', ['12345678901234567890.5']]);
    // the first call after that DDL works: it was held and sent again with the new types
    expect(r[7]).toEqual([1, 2]);
    expect(r[8]).toEqual([1, 1]);
    expect(r[9]).toEqual([7, 8]);
  });

  it('cursor: the shape cached by its plan follows DDL between transactions', async () => {
    const r = await inWorker(
      cluster,
      `ctx.sql\`DROP TABLE IF EXISTS pc\`;
       ctx.sql\`CREATE TABLE pc AS SELECT i AS a FROM generate_series(1, 50) i\`;
       const read = () => ctx.transaction((tx) => { const out = []; for (const rows of tx.sql.cursor(20)\`SELECT * FROM pc ORDER BY a\`) out.push(rows.length, rows.columns.join(), rows[rows.length - 1]); return out; });
       const a = read();
       ctx.sql\`ALTER TABLE pc ADD COLUMN b text DEFAULT 'z'\`;
       const b = read();
       return { a, b };`,
    );
    expect(r.a).toEqual([20, 'a', { a: 20 }, 20, 'a', { a: 40 }, 10, 'a', { a: 50 }]);
    expect(r.b).toEqual([20, 'a,b', { a: 20, b: 'z' }, 20, 'a,b', { a: 40, b: 'z' }, 10, 'a,b', { a: 50, b: 'z' }]);
  });
});
