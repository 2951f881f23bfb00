/**
 * The worker of bench/hotspots.ts (a diagnostic, not run by `npm run bench`): times the bridge's
 * native.execute() alone next to ctx.sql, then, when asked (a row in hs_go), runs a loop for 8 s
 * under `perf record`: loop 'select1' (ctx.sql`SELECT 1`, each in its own transaction),
 * 'select1-xact' (the same inside one ctx.transaction) or 'fetch' (1M-row fetches).
 *
 * It reaches past the public API: it opens the bridge the runtime loaded
 * (pg_node_worker_bridge.node, found in /proc/self/maps) again, so it depends on the runtime's
 * internals of the day (src/runtime/native.ts).
 */
import * as fs from 'fs';
import { defineWorker } from 'pg-node-worker';

/** The few bridge functions this worker calls (see src/runtime/native.ts for the real ones). */
interface Bridge {
  prepare(text: string): { id: number };
  depth(): number;
  begin(): void;
  commit(): void;
  execute(planId: number, knownShape: number): unknown;
  resultHeader(): Float64Array;
  executeText(text: string): unknown;
}

export function hotspots(name: string, loop: 'select1' | 'select1-xact' | 'fetch') {
  return defineWorker({
    searchPath: ['public'],
    name,
    restart: 'never',
    async main(ctx) {
      // the bridge the runtime loaded, found in /proc/self/maps and opened again (same library)
      const file = fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
        .map((l) => l.slice(l.indexOf('/'))).find((l) => l.endsWith('pg_node_worker_bridge.node'));
      if (!file) throw new Error('the bridge is not mapped');
      const mod = { exports: {} as Bridge };
      process.dlopen(mod, file);
      const native = mod.exports;
      const rec = (k: string, v: number) => ctx.sql`INSERT INTO hs(k, v) VALUES (${k}, ${v})`;
      rec('pid', ctx.worker.pid);

      const N = 200000;
      const time = (label: string, fn: () => unknown) => {
        for (let i = 0; i < 20000; i++) fn();
        const t0 = performance.now();
        for (let i = 0; i < N; i++) fn();
        rec(label, ((performance.now() - t0) * 1000) / N);
      };
      const plan = native.prepare('SELECT 1');
      time('us: N-API call returning a number (native.depth())', () => native.depth());
      time('us: native.begin() + native.commit()', () => { native.begin(); native.commit(); });
      time('us: native.execute(plan, SELECT 1) (SPI + result)', () => native.execute(plan.id, 0));
      time('us: native.executeText(SELECT 1) (SPI_execute, no plan)', () => native.executeText('SELECT 1'));
      time('us: ctx.sql`SELECT 1` (all of it)', () => ctx.sql`SELECT 1`);
      ctx.transaction((tx) => time('us: tx.sql`SELECT 1` (inside one ctx.transaction)', () => tx.sql`SELECT 1`));
      // the bridge alone as ctx.sql calls it once the shape is known (header index 2: the shape id)
      native.execute(plan.id, 0);
      const shape = native.resultHeader()[2];
      ctx.transaction(() => time('us: native.execute(plan, SELECT 1, shape known) inside one transaction', () => native.execute(plan.id, shape)));
      ctx.transaction(() => time('us: N-API call returning a number, inside one transaction', () => native.depth()));
      ctx.transaction((tx) => time('us: tx.sql.unsafe(SELECT 1, []) inside one transaction', () => tx.sql.unsafe('SELECT 1', [])));
      // what ctx.sql adds to the bridge, written out by hand (header slots: H_COUNT 1, H_RETYPED 7 of src/runtime/native.ts)
      const header = native.resultHeader();
      const cols = Object.freeze(['?column?']);
      const one = new Function('v', 'return { "?column?": v };') as (v: unknown) => unknown;
      const byHand = (...values: unknown[]) => {
        if (values.length !== 0) throw new Error('no values');
        const raw = native.execute(plan.id, shape);
        if (header[7] !== 0) throw new Error('retyped');
        const rows = [one(raw)] as unknown[] & { count?: number; command?: string; columns?: readonly string[] };
        rows.count = header[1];
        rows.command = 'SELECT';
        rows.columns = cols;
        return rows;
      };
      ctx.transaction(() => time('us: native.execute + a Result made by hand, inside one transaction', () => byHand()));
      ctx.sql`CREATE TABLE IF NOT EXISTS hs_rows AS SELECT i::int4 AS i, md5(i::text) AS t FROM generate_series(1, 1000000) i`;
      ctx.sql`CREATE TABLE IF NOT EXISTS hs_rows8 AS SELECT i::int4 AS a, i::int8 * 1000003 AS b, i / 7.0::float8 AS c, i % 3 = 0 AS d, md5(i::text) AS e,
           timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS f,
           jsonb_build_object('id', i, 'tag', 'x' || (i % 100)) AS g, round(i / 3.0, 4)::numeric AS h FROM generate_series(1, 500000) i`;
      const fetches = [
        ['1M (int4, text)', 'SELECT i, t FROM hs_rows'],
        ['500k x 8 cols', 'SELECT a, b, c, d, e, f, g, h FROM hs_rows8'],
        ['1M (int4)', 'SELECT i FROM hs_rows'],
        ['1M count(*)', 'SELECT count(*) FROM hs_rows'],
      ] as const;
      for (const [label, text] of fetches) {
        const p = native.prepare(text);
        for (let i = 0; i < 3; i++) {
          let t0 = performance.now();
          let raw: unknown = native.execute(p.id, 0);
          rec(`ms: ${label}: native.execute (SPI + columns to JS)`, performance.now() - t0);
          raw = null;
          t0 = performance.now();
          let rows: unknown[] | null = ctx.sql.unsafe(text, []);
          rec(`ms: ${label}: ctx.sql (+ row objects)`, performance.now() - t0);
          rows = null;
          void raw, void rows;
        }
      }
      rec('done', 1);
      while (!ctx.signal.aborted) {
        if (ctx.sql`SELECT 1 FROM hs_go`.length) {
          ctx.sql`DELETE FROM hs_go`;
          const t0 = performance.now();
          let n = 0;
          if (loop === 'fetch') {
            while (performance.now() - t0 < 8000) {
              ctx.sql.unsafe('SELECT i, t FROM hs_rows', []);
              n += 1e6;
            }
          } else if (loop === 'select1-xact') {
            ctx.transaction((tx) => {
              while (performance.now() - t0 < 8000) {
                for (let k = 0; k < 64; k++) tx.sql`SELECT 1`;
                n += 64;
              }
            });
          } else {
            while (performance.now() - t0 < 8000) {
              for (let k = 0; k < 64; k++) ctx.sql`SELECT 1`;
              n += 64;
            }
          }
          rec('calls/s: SELECT 1 loop under perf', n / 8);
        }
        await ctx.sleep(50);
      }
    },
  });
}
