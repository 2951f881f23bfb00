/**
 * Runs as the role app (no superuser, a grant on app_log only) and tries what such a role must not
 * do: read or write a table it has no grant on, see or set node_worker.directory, change its role,
 * write or read server files, load the runtime library, create a C function. Logs the outcome of
 * each as 'security report <JSON>'.
 */
import { defineWorker, PgError } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'limited',
  role: 'app',
  restart: 'never',
  async main(ctx) {
    const out: Record<string, unknown> = {};
    const attempt = (what: string, fn: () => unknown) => {
      try {
        out[what] = { ok: fn() };
      } catch (e) {
        out[what] = { code: (e as PgError).code, message: (e as Error).message };
      }
    };
    attempt('whoami', () => ctx.sql`SELECT current_user AS u, session_user AS s, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su`[0]);
    attempt('secret', () => ctx.sql`SELECT v FROM secret`);
    attempt('insertSecret', () => ctx.sql`INSERT INTO secret VALUES ('x')`);
    attempt('granted', () => {
      ctx.sql`INSERT INTO app_log VALUES ('hello')`;
      return ctx.sql<{ n: number }>`SELECT count(*)::int AS n FROM app_log`[0].n;
    });
    attempt('txSecret', () => ctx.transaction((tx) => tx.sql`SELECT v FROM secret`));
    attempt('show', () => ctx.sql`SHOW node_worker.directory`);
    attempt('pgSettings', () => ctx.sql`SELECT name FROM pg_settings WHERE name = 'node_worker.directory'`.length);
    attempt('setRole', () => ctx.sql`SET ROLE postgres`);
    attempt('sessionAuth', () => ctx.sql.unsafe('SET SESSION AUTHORIZATION postgres'));
    attempt('copyTo', () => ctx.sql.unsafe("COPY (SELECT 1) TO '/tmp/pgnw-should-not-exist'"));
    attempt('readFile', () => ctx.sql`SELECT pg_read_file('postgresql.conf')`);
    attempt('load', () => ctx.sql.unsafe("LOAD 'pg_node_worker_runtime'"));
    attempt('createC', () => ctx.sql.unsafe("CREATE FUNCTION pg_temp.evil() RETURNS void LANGUAGE c AS 'pg_node_worker_runtime', 'pg_node_worker_main'"));
    // ctx.setting is not SQL: the worker's code is the deployer's, it may read any setting
    attempt('setting', () => ctx.setting('node_worker.directory'));
    ctx.log.info('security report ' + JSON.stringify(out));
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
