/**
 * The soak worker (test/faults/soak.faults.ts): reads pgbench's tables and writes its own
 * (<name>_rows), in transactions, in a loop. Every 250 iterations it reports to public.soak_stats;
 * when the test asks (gc_request > gc_done) it runs a full GC and reports its memory.
 */
import { defineWorker, PgError } from 'pg-node-worker';
import * as sdk from 'pg-node-worker';
import * as fs from 'fs';
import * as v8 from 'v8';
import * as vm from 'vm';

let gc: (() => void) | null = null;

/** RssAnon of this process, in bytes. */
const rssAnon = () => Number(/^RssAnon:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

function memoryAfterFullGc() {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  const m = process.memoryUsage();
  const anon = rssAnon();
  const heapPhysical = v8.getHeapStatistics().total_physical_size;
  // and once V8 gave its spare pages back (a low-memory GC) and malloc trimmed: RssAnon as it can be
  (sdk as unknown as { __internal: { releaseMemory(): void } }).__internal.releaseMemory();
  return { live: m.heapUsed, heapPhysical, anon, anonReleased: rssAnon() };
}

export function soak(name: string) {
  const rows = `public.${name}_rows`;
  return defineWorker({
    searchPath: ['public'],
    name,
    restart: 1,
    async main(ctx) {
      ctx.sql.unsafe(`CREATE TABLE IF NOT EXISTS ${rows} (id int PRIMARY KEY, v bigint NOT NULL, payload text NOT NULL)`);
      ctx.sql`INSERT INTO soak_stats (name) VALUES (${ctx.worker.name}) ON CONFLICT (name) DO NOTHING`;
      ctx.log.info(`${name}: soaking as pid ` + ctx.worker.pid);
      let i = 0;
      let errors = 0;
      let seen = 0;
      while (!ctx.signal.aborted) {
        i++;
        try {
          ctx.transaction((tx) => {
            const aid = 1 + ((i * 7919) % 500000);
            const a = tx.sql<{ filler: string }>`SELECT aid, abalance, filler FROM pgbench_accounts WHERE aid = ${aid}`;
            if (a.length !== 1) throw new Error('pgbench_accounts row ' + aid + ' missing');
            tx.sql.unsafe(
              `INSERT INTO ${rows} (id, v, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, payload = EXCLUDED.payload`,
              [i % 1000, BigInt(i), 'payload ' + i + ' ' + a[0].filler.trim()],
            );
            seen += tx.sql.unsafe(`SELECT id, v FROM ${rows} WHERE v > $1`, [BigInt(i - 50)]).length;
            tx.sql`SELECT bid, bbalance FROM pgbench_branches ORDER BY bid`;
          });
          if (i % 250 === 0) {
            const m = process.memoryUsage();
            const [r] = ctx.sql<{ gc_request: number; gc_done: number }>`UPDATE soak_stats SET iterations = ${i}, errors = ${errors}, heap_total = ${m.heapTotal}
                                WHERE name = ${ctx.worker.name} RETURNING gc_request, gc_done`;
            if (r.gc_request > r.gc_done) {
              const g = memoryAfterFullGc();
              ctx.sql`UPDATE soak_stats SET gc_done = ${r.gc_request}, live_heap = ${g.live}, heap_physical = ${g.heapPhysical}, rss_anon = ${g.anon},
                           rss_anon_released = ${g.anonReleased}
                       WHERE name = ${ctx.worker.name}`;
            }
          }
        } catch (e) {
          if (ctx.signal.aborted) break;
          errors++;
          if (errors <= 5) ctx.log.warning(`${name}: iteration ` + i + ' failed: ' + (e instanceof PgError ? e.code + ' ' : '') + (e as Error).message);
        }
        if (i % 10 === 0) await ctx.sleep(1);
      }
    },
  });
}
