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

function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

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
  const s = quoteIdent(schema);
  ctx.transaction((tx) => {
    tx.sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    tx.sql.unsafe(`CREATE TABLE IF NOT EXISTS ${s}.counted (
        type text NOT NULL CHECK (type IN ('total', 'delta')),
        value integer NOT NULL)`);
    tx.sql.unsafe(`CREATE UNIQUE INDEX IF NOT EXISTS counted_unique_total ON ${s}.counted (type) WHERE type = 'total'`);
    tx.sql.unsafe(`INSERT INTO ${s}.counted (type, value)
        SELECT 'total', 0 WHERE NOT EXISTS (SELECT 1 FROM ${s}.counted WHERE type = 'total')`);
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
    const table = `${quoteIdent(schema)}.counted`;
    let naptime = naptimeSeconds(ctx);
    ctx.onReload(() => {
      naptime = naptimeSeconds(ctx);
      ctx.log.info(`naptime is now ${naptime} s`);
    });

    ensureSchema(ctx, schema);
    ctx.log.info(`initialized with ${table}, naptime ${naptime} s`);

    while (!ctx.signal.aborted) {
      await ctx.sleep(naptime * 1000);
      if (ctx.signal.aborted) break;
      try {
        const rows = ctx.transaction((tx) =>
          tx.sql.unsafe<{ value: number }>(
            `WITH deleted AS (DELETE FROM ${table} WHERE type = 'delta' RETURNING value),
                  total AS (SELECT coalesce(sum(value), 0) AS sum FROM deleted)
             UPDATE ${table} SET value = ${table}.value + total.sum
             FROM total WHERE type = 'total' AND total.sum <> 0
             RETURNING ${table}.value`,
          ),
        );
        if (rows.length > 0) ctx.log.info(`count in ${table} is now ${rows[0].value}`);
      } catch (err) {
        if (err instanceof PgError && MISSING.has(err.code)) {
          ctx.log.warning(`${table} is gone (${err.message}); recreating it`);
          ensureSchema(ctx, schema);
          continue;
        }
        throw err;
      }
    }
  },
});
