/**
 * The ctx.sql helpers against a real server: identifiers the server reads back exactly as given
 * (property test), injection attempts through identifiers, composed statements and bulk inserts
 * run by the server, and a TypeScript worker using all of it (test/workers/sqlhelpers-shop.ts).
 * How statements are built is unit-tested without a server in test/unit/fragments.test.ts.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from './helpers/cluster';
import { evaluatorCluster, inWorker, inWorkerError } from './helpers/evalWorker';
import { runs } from './helpers/fc';

let cluster: Cluster;
/** test/workers/sqlhelpers-shop.ts's schema (a name no hand-built SQL would survive) */
const SHOP = `shop"; DROP SCHEMA public CASCADE; --`;

beforeAll(async () => {
  cluster = await evaluatorCluster({
    start: async (c) => {
      await c.deployFile('sqlhelpers-shop.ts');
      await c.start();
    },
  });
}, 60000);

afterAll(async () => {
  await cluster?.destroy();
});

/** at most NAMEDATALEN-1 bytes: longer names PostgreSQL truncates, as it does any identifier */
const fitsName = (s: string) => Buffer.byteLength(s) <= 63;
const identifier = fc.string({ unit: 'binary', minLength: 1, maxLength: 63 }).filter((s) => !s.includes('\0') && fitsName(s));

describe('identifiers on the server', () => {
  it('reads back any name without U+0000 exactly (column alias, and a table created by it)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(identifier, { minLength: 1, maxLength: 20 }), async (names) => {
        const seen = await inWorker(
          cluster,
          `const names = ${JSON.stringify(names)};
           return ctx.transaction(({ sql }) => names.map((n) => {
             const alias = sql\`SELECT 1 AS \${sql(n)}\`.columns[0];
             sql\`CREATE TEMP TABLE \${sql(['pg_temp', n])} (\${sql(n)} int) ON COMMIT DROP\`;
             const [t] = sql\`SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1
                              WHERE c.relnamespace = pg_my_temp_schema() AND c.relname = \${n}\`;
             return [alias, t?.relname, t?.attname];
           }));`,
        );
        expect(seen).toEqual(names.map((n) => [n, n, n]));
      }),
      runs(25, 60000),
    );
  }, 120000);

  const HOSTILE = [
    'x"; DROP TABLE victim; --',
    `x"" OR 1=1 --`,
    '"',
    '""',
    "x'; DELETE FROM victim; --",
    'x /* comment */',
    'x -- comment',
    '*/ DROP TABLE victim; /*',
    'back\\slash\\',
    '\\"; DROP TABLE victim; --',
    '$1',
    '$$; DROP TABLE victim; $$',
    'Ｘ＂；ＤＲＯＰ', // fullwidth quote and semicolon: not quotes to PostgreSQL
    'x\u2028y\u00a0z',
    '名前',
    '🙂"🙂',
    'U&"\\0041"',
    'a\nb\tc',
    ' ',
  ];

  it('keeps injection attempts as names: each becomes a table of exactly that name, nothing else runs', async () => {
    await cluster.query('CREATE TABLE IF NOT EXISTS public.victim (x int); INSERT INTO public.victim VALUES (1)');
    const made = await inWorker(
      cluster,
      `const { sql } = ctx;
       sql\`CREATE SCHEMA inj\`;
       const names = ${JSON.stringify(HOSTILE)};
       for (const n of names) {
         sql\`CREATE TABLE \${sql(['inj', n])} (\${sql(n)} int)\`;
         sql\`INSERT INTO \${sql(['inj', n])} \${sql({ [n]: 7 })}\`;
       }
       return names.map((n) => sql\`SELECT \${sql(n)} AS v FROM \${sql(['inj', n])}\`[0].v);`,
    );
    expect(made).toEqual(HOSTILE.map(() => 7));
    const tables = await cluster.query<{ relname: string; attname: string }>(
      `SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1 WHERE s.nspname = 'inj' ORDER BY c.relname`,
    );
    expect(tables.map((t) => t.relname).sort()).toEqual([...HOSTILE].sort());
    for (const t of tables) expect(t.attname).toBe(t.relname);
    expect(await cluster.query('SELECT x FROM public.victim')).toEqual([{ x: 1 }]);
  });

  it('truncates a name over 63 bytes as PostgreSQL does any identifier', async () => {
    const long = 'n'.repeat(70);
    expect(await inWorker(cluster, `return ctx.sql\`SELECT 1 AS \${ctx.sql(${JSON.stringify(long)})}\`.columns[0];`)).toBe('n'.repeat(63));
  });
});

describe('composed statements on the server', () => {
  it('runs nested fragments with their parameters renumbered and typed by the server', async () => {
    const r = await inWorker(
      cluster,
      `const { sql } = ctx;
       const inner = sql.fragment\`\${'b'}::text || \${2}::int\`;
       const mid = sql.fragment\`\${1}::int AS a, \${inner} AS bc\`;
       const r = sql\`SELECT \${mid}, \${3n}::int8 AS d \${sql.fragment\`\`}\`;
       return r[0];`,
    );
    expect(r).toEqual({ a: 1, bc: 'b2', d: 3n });
  });

  /** job code: run(tree) selects ('' || k1 || k2 ...), a string leaf a parameter, a subtree a fragment */
  const BUILD_TREE = [
    'const { sql } = ctx;',
    'const tpl = (parts) => Object.assign(parts, { raw: parts });',
    'const build = (t) => {',
    "  if (t.length === 0) return sql.fragment(tpl([\"('')\"]));",
    "  const parts = [\"('' || \"];",
    "  t.forEach((k, i) => parts.push((typeof k === 'string' ? '::text' : '') + (i < t.length - 1 ? ' || ' : ')')));",
    "  return sql.fragment(tpl(parts), ...t.map((k) => (typeof k === 'string' ? k : build(k))));",
    '};',
    "const run = (t) => sql(tpl(['SELECT ', ' AS v']), build(t))[0].v;",
  ].join('\n');

  it('runs random nested fragment trees with every value where it was written', async () => {
    type Tree = (string | Tree)[];
    const tree = fc.letrec<{ tree: Tree; kid: string | Tree }>((tie) => ({
      tree: fc.array(tie('kid'), { maxLength: 4 }),
      kid: fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 3 }).filter((x) => !x.includes('\0')), tie('tree')),
    })).tree;
    const flat = (t: Tree): string => t.map((k) => (typeof k === 'string' ? k : flat(k))).join('');
    await fc.assert(
      fc.asyncProperty(fc.array(tree, { minLength: 1, maxLength: 10 }), async (trees) => {
        const got = await inWorker(cluster, BUILD_TREE + `return ${JSON.stringify(trees)}.map((t) => run(t));`);
        expect(got).toEqual(trees.map(flat));
      }),
      runs(20, 60000),
    );
  }, 120000);

  it('caches a composed statement by its text: the same text is one plan, other identifiers another', async () => {
    const r = await inWorker(
      cluster,
      `const { sql } = ctx;
       const out = [];
       for (const col of ['x', 'y', 'x']) out.push(sql\`SELECT \${1}::int AS \${sql(col)}\`.columns[0]);
       return out;`,
    );
    expect(r).toEqual(['x', 'y', 'x']);
  });

  it('inserts many rows in one statement, values typed by the target columns', async () => {
    const r = await inWorker(
      cluster,
      `const { sql } = ctx;
       sql\`CREATE TEMP TABLE bulk (id int8, name text, at timestamptz, doc jsonb, v int4[])\`;
       const rows = Array.from({ length: 5000 }, (_, i) => ({ id: BigInt(i), name: 'n' + i, at: new Date(Date.UTC(2024, 0, 1)), doc: { i }, v: [i, null] }));
       const ins = sql\`INSERT INTO bulk \${sql(rows)}\`;
       const check = sql\`SELECT count(*)::int AS n, sum(id)::int8 AS s, max((doc->>'i')::int) AS m, min(at) AS at, (array_agg(v ORDER BY id))[2:2] AS v FROM bulk\`[0];
       return { count: ins.count, ...check };`,
    );
    expect(r).toEqual({ count: 5000, n: 5000, s: 12497500n, m: 4999, at: new Date(Date.UTC(2024, 0, 1)), v: [[1, null]] });
  });

  it('takes JS arrays of numbers, strings and bigints for = ANY(...)', async () => {
    const r = await inWorker(
      cluster,
      `const { sql } = ctx;
       return [
         sql\`SELECT g FROM generate_series(1, 5) g WHERE g = ANY(\${[2, 4, 9]}) ORDER BY g\`.map((x) => x.g),
         sql\`SELECT s FROM unnest(ARRAY['a', 'b''c', 'd']) s WHERE s = ANY(\${["b'c", 'd', 'z']}) ORDER BY s\`.map((x) => x.s),
         sql\`SELECT g FROM generate_series(1::int8, 5::int8) g WHERE g = ANY(\${[9007199254740993n, 3n]})\`.map((x) => x.g),
         sql\`SELECT 1 AS one WHERE 1 = ANY(\${[]})\`.length,
       ];`,
    );
    expect(r).toEqual([[2, 4], ["b'c", 'd'], [3n], 0]);
  });

  it('refuses a fragment of another builder before anything is sent', async () => {
    const e = await inWorkerError(
      cluster,
      `const Fragment = Object.getPrototypeOf(ctx.sql('x')).constructor;
       const forged = Object.freeze(new Fragment());
       return ctx.sql\`SELECT * FROM \${forged}\`;`,
    );
    expect(e).toMatchObject({ name: 'TypeError', isPgError: false });
    expect(e.message).toMatch(/not made by this worker's sql/);
  });
});

describe('a TypeScript worker using the helpers', () => {
  it('creates, inserts, searches and refuses as written', async () => {
    await cluster.waitForLog(/sqlhelpers: done/, 30000);
    const rows = await cluster.query<{ key: string; value: unknown }>(
      `SELECT key, value FROM ${'"' + SHOP.replace(/"/g, '""') + '"'}.report ORDER BY key`,
    );
    const report = Object.fromEntries(rows.map((r) => [r.key, r.value]));
    expect(report.inserted).toEqual([2, [3, 4]]);
    expect(report.search).toEqual([[1, 2, 3, 4], [1, 2], [2], [4]]);
    expect(report.any).toEqual([[1, 3], [2, 4], [1, 3], [3, 4], 0]);
    expect(report.cursor).toEqual([[1, 2, 3], [4]]);
    const refused = report.refused as Record<string, string>;
    expect(refused.empty).toMatch(/^TypeError: sql\(identifier\): an identifier cannot be empty/);
    expect(refused.nul).toMatch(/^TypeError: .*cannot contain U\+0000/);
    expect(refused.forged).toMatch(/^TypeError: .*not made by this worker's sql/);
    expect(refused.mixed).toMatch(/^TypeError: sql\(rows\): row 1 has keys \(id, price\) but row 0 has \(id, name\)/);
    expect(refused.norows).toMatch(/^TypeError: sql\(rows\): no rows to insert/);
    expect(refused.nocolumns).toMatch(/^TypeError: sql\(rows\): the first row has no keys/);
    expect(refused.toomany).toMatch(/^RangeError: sql\(rows\): 16384 rows × 4 columns is 65536 parameters.*batches of at most 16383 rows/);
    expect(refused.toomanycomposed).toMatch(/^RangeError: this statement has 80000 parameters/);
    expect(refused.asvalue).toMatch(/^TypeError: an SQL fragment cannot be sent as a value/);
    // the public schema the name tried to drop is still there
    expect(await cluster.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'public'`)).toEqual([{ n: 1 }]);
  });
});
