/**
 * A worker that uses every ctx.sql helper the way an application would (test/sqlhelpers.test.ts):
 * a schema whose name would break any hand-built SQL (SCHEMA, or ctx.args.schema when launched),
 * a bulk insert, optional clauses as fragments, `= ANY(array)` lists, and the helpers' refusals
 * inside a transaction that must stay usable (proof that nothing reached the server). It writes
 * what it saw to <schema>.report and logs `sqlhelpers: done`.
 *
 * The `@ts-expect-error` lines are type tests: `npm run typecheck` fails if the SDK's types
 * accept them.
 */
import { defineWorker, type SqlFragment, type Transaction } from 'pg-node-worker';

/** the schema it works in: a name that is an injection attempt, which sql([...]) keeps a name */
export const SCHEMA = `shop"; DROP SCHEMA public CASCADE; --`;

interface Item {
  id: number;
  name: string;
  price: bigint;
  tags: string[];
}

const ITEMS: Item[] = [
  { id: 1, name: 'apple', price: 120n, tags: ['fruit'] },
  { id: 2, name: "o'range", price: 90n, tags: ['fruit', 'citrus'] },
  { id: 3, name: 'kale; DROP TABLE x', price: 300n, tags: [] },
  { id: 4, name: 'bread', price: 250n, tags: ['bakery'] },
];

/** What a refused call threw: its class and message (the test checks them). */
function refusal(tx: Transaction, fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    // had the call reached the server, this level would be rolled back and this SELECT fail 25P02
    tx.sql`SELECT 1`;
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'not refused';
}

export default defineWorker({
  name: 'sqlhelpers',
  restart: 'never',
  async main(ctx) {
    const { sql } = ctx;
    const schema = (ctx.args as { schema?: string } | null)?.schema ?? SCHEMA;
    const items = sql([schema, 'items']);
    const report = sql([schema, 'report']);

    sql`CREATE SCHEMA ${sql(schema)}`;
    sql`CREATE TABLE ${items} (id int PRIMARY KEY, name text NOT NULL, price int8 NOT NULL, tags text[] NOT NULL)`;
    sql`CREATE TABLE ${report} (key text PRIMARY KEY, value jsonb)`;
    const put = (key: string, value: unknown) => sql`INSERT INTO ${report} ${sql({ key, value: JSON.stringify(value) })}`;

    // bulk insert: named columns, then the keys of the first row
    const inserted = sql`INSERT INTO ${items} ${sql(ITEMS.slice(0, 2), 'id', 'name', 'price', 'tags')}`;
    const rest = ITEMS.slice(2).map(({ id, name, price, tags }) => ({ id, name, price, tags }));
    const inserted2 = sql`INSERT INTO ${items} ${sql(rest)} RETURNING id`;
    put('inserted', [inserted.count, inserted2.map((r) => r.id)]);

    // optional clauses: an empty fragment adds nothing
    const search = (opts: { maxPrice?: bigint; tag?: string }) => {
      const conds: SqlFragment[] = [];
      if (opts.maxPrice !== undefined) conds.push(sql.fragment`price <= ${opts.maxPrice}`);
      if (opts.tag !== undefined) conds.push(sql.fragment`${opts.tag} = ANY(tags)`);
      const where = conds.length === 0 ? sql.fragment`` : conds.reduce((all, c) => sql.fragment`${all} AND ${c}`, sql.fragment`WHERE true`);
      return sql<{ id: number }>`SELECT id FROM ${items} ${where} ORDER BY ${sql('id')}`.map((r) => r.id);
    };
    put('search', [search({}), search({ maxPrice: 200n }), search({ maxPrice: 200n, tag: 'citrus' }), search({ tag: 'bakery' })]);

    // lists: = ANY(array) of numbers, strings, bigints; an empty list matches nothing
    put('any', [
      sql<{ id: number }>`SELECT id FROM ${items} WHERE id = ANY(${[1, 3, 99]}) ORDER BY id`.map((r) => r.id),
      sql<{ id: number }>`SELECT id FROM ${items} WHERE name = ANY(${["o'range", 'bread']}) ORDER BY id`.map((r) => r.id),
      sql<{ id: number }>`SELECT id FROM ${items} WHERE price = ANY(${[300n, 120n]}) ORDER BY id`.map((r) => r.id),
      sql<{ id: number }>`SELECT id FROM ${items} WHERE id <> ALL(${[1, 2]}) ORDER BY id`.map((r) => r.id),
      sql`SELECT id FROM ${items} WHERE id = ANY(${[] as number[]})`.length,
    ]);

    // a cursor over a composed statement
    const batches = ctx.transaction((tx) => {
      const out: number[][] = [];
      for (const rows of tx.sql.cursor(3)<{ id: number }>`SELECT id FROM ${items} ${sql.fragment`WHERE id > ${0}`} ORDER BY id`)
        out.push(rows.map((r) => r.id));
      return out;
    });
    put('cursor', batches);

    // refusals, inside a transaction that then commits
    const refused = ctx.transaction((tx) => {
      const s = tx.sql;
      const forged = Object.create(Object.getPrototypeOf(s('x'))) as SqlFragment;
      const out = {
        empty: refusal(tx, () => s('')),
        nul: refusal(tx, () => s`SELECT 1 FROM ${s(['public', 'a\0b'])}`),
        forged: refusal(tx, () => s`SELECT * FROM ${forged}`),
        mixed: refusal(tx, () => s`INSERT INTO ${items} ${s([{ id: 9, name: 'a' }, { id: 10, price: 1n }])}`),
        norows: refusal(tx, () => s`INSERT INTO ${items} ${s([] as Item[])}`),
        nocolumns: refusal(tx, () => s({})),
        toomany: refusal(tx, () => s(Array.from({ length: 16384 }, (_, i) => ({ ...ITEMS[0], id: i })))),
        toomanycomposed: refusal(tx, () => {
          const ids = s(Array.from({ length: 40000 }, (_, i) => ({ id: i })));
          return s`INSERT INTO ${items} ${ids}; ${ids}`;
        }),
        asvalue: refusal(tx, () => s`SELECT ${[s('x')]}::text[]`),
      };
      s`INSERT INTO ${report} (key, value) VALUES ('refused', ${JSON.stringify(out)})`;
      return out;
    });
    void refused;

    // type tests
    // @ts-expect-error a column that rows do not have
    void (() => sql(ITEMS, 'nope'));
    // @ts-expect-error numbers are neither names nor rows: use = ANY(${array})
    void (() => sql([1, 2]));
    // @ts-expect-error a fragment tag is a tag
    void (() => sql.fragment('WHERE x'));
    const typed: SqlFragment = sql(ITEMS, 'id', 'name');
    void typed;

    ctx.log.info('done');
  },
});
