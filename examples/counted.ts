/**
 * PostgreSQL's worker_spi sample, in TypeScript.
 *
 * Keeps a table `counted(type text, value int)` with one 'total' row; anyone
 * may insert 'delta' rows. Every naptime the worker deletes the deltas and
 * adds them to the total, in one transaction.
 *
 *   counted.naptime  seconds between rounds (default 10); a reload
 *                    (pg_ctl reload, SIGHUP) picks up a new value
 *   counted.schema   the schema to use (default "counted"; read at start)
 *
 * If someone drops the schema while the worker runs, it recreates it
 * instead of crash-looping — the question the 9.3 walk-through's readers
 * asked about the C original.
 *
 * Deploy:  pg-node-worker deploy examples/counted.ts -D $PGDATA
 */
import { defineWorker, PgError, type WorkerContext } from 'pg-node-worker';

const DEFAULT_NAPTIME_S = 10;

function naptimeSeconds(ctx: WorkerContext): number {
  const raw = ctx.setting('counted.naptime');
  const n = raw === null ? DEFAULT_NAPTIME_S : Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    ctx.log.warning(`counted.naptime = ${JSON.stringify(raw)} is not a positive number of seconds; using ${DEFAULT_NAPTIME_S}`);
    return DEFAULT_NAPTIME_S;
  }
  return n;
}

/** Creates the schema, the table and the 'total' row if any is missing. */
function ensureSchema(ctx: WorkerContext, schema: string): void {
  ctx.transaction(({ sql }) => {
    const table = sql([schema, 'counted']);
    sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`;
    sql`CREATE TABLE IF NOT EXISTS ${table} (
        type text NOT NULL CHECK (type IN ('total', 'delta')),
        value integer NOT NULL)`;
    sql`CREATE UNIQUE INDEX IF NOT EXISTS counted_unique_total ON ${table} (type) WHERE type = 'total'`;
    sql`INSERT INTO ${table} (type, value)
        SELECT 'total', 0 WHERE NOT EXISTS (SELECT 1 FROM ${table} WHERE type = 'total')`;
  });
}

// the schema or the table is gone (dropped while we run)
const MISSING = new Set(['3F000', '42P01']);

export default defineWorker({
  name: 'counted',
  database: 'postgres',
  restart: 5,
  start: 'recovery-finished',
  async main(ctx) {
    const schema = ctx.setting('counted.schema') || 'counted';
    // "schema"."counted", quoted by sql(): any schema name is taken as it is, never as SQL
    const table = ctx.sql([schema, 'counted']);
    let naptime = naptimeSeconds(ctx);
    ctx.onReload(() => {
      naptime = naptimeSeconds(ctx);
      ctx.log.info(`naptime is now ${naptime} s`);
    });

    ensureSchema(ctx, schema);
    // for the log only: the statements use `table`
    const name = `${JSON.stringify(schema)}.counted`;
    ctx.log.info(`initialized with ${name}, naptime ${naptime} s`);

    while (!ctx.signal.aborted) {
      await ctx.sleep(naptime * 1000);
      if (ctx.signal.aborted) break;
      try {
        const rows = ctx.transaction((tx) =>
          tx.sql<{ value: number }>`
            WITH deleted AS (DELETE FROM ${table} WHERE type = 'delta' RETURNING value),
                 total AS (SELECT coalesce(sum(value), 0) AS sum FROM deleted)
            UPDATE ${table} AS c SET value = c.value + total.sum
            FROM total WHERE c.type = 'total' AND total.sum <> 0
            RETURNING c.value`,
        );
        if (rows.length > 0) ctx.log.info(`count in ${name} is now ${rows[0].value}`);
      } catch (err) {
        if (err instanceof PgError && MISSING.has(err.code)) {
          ctx.log.warning(`${name} is gone (${err.message}); recreating it`);
          ensureSchema(ctx, schema);
          continue;
        }
        throw err;
      }
    }
  },
});
