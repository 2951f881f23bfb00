/**
 * pg_prewarm's autoprewarm, in TypeScript.
 *
 * After a restart shared_buffers is cold and the first queries read from disk. This worker
 * records which blocks are in shared_buffers and loads them back when the server starts:
 *
 *  - at start (start: 'consistent', so also on a hot standby as soon as it accepts reads) it reads
 *    the dump file <data directory>/node_worker_autoprewarm.blocks and reads the listed blocks of
 *    its own database and of the shared catalogs back into shared_buffers, relation by relation in
 *    block order, stopping when shared_buffers has no free buffer left (it never evicts anything);
 *    then, one database after the other, it launches a child (this same bundle, with args
 *    { load: <database oid> }, connected to that database) for every other database the list
 *    names, as pg_prewarm's leader does: a relation can only be opened through the catalogs of
 *    the database it belongs to;
 *  - every autoprewarm.interval seconds (default 300; 0: only at shutdown) and when the server
 *    stops, it writes the current buffer list atomically: a temporary file, fsync, rename, fsync of
 *    the directory. A crash in the middle leaves the previous list. SELECT node_worker.wake(
 *    'autoprewarm') writes it now.
 *
 * The file has pg_prewarm's format: a header line "<<count>>", then one line per block,
 * "database,tablespace,relfilenode,fork,block", sorted. A relation is found again from its
 * tablespace and relfilenode with pg_filenode_relation(), so blocks of dropped or rewritten
 * relations (VACUUM FULL, TRUNCATE) are skipped, as are blocks past a relation's current end.
 *
 * A database that does not allow connections (template0), or that the worker's role may not
 * connect to, is skipped with a warning. The leader writes the whole list (all databases).
 *
 * A worker restarted after a failure does not load again: a shared region (ctx.shared) per
 * database remembers that its load was done, until the server restarts.
 *
 * The worker's role needs the privileges of pg_monitor (it reads shared_buffers) and SELECT on
 * the tables it prewarms; the default, the bootstrap superuser, has both.
 *
 * Deploy:  pg-node-worker deploy examples/autoprewarm.ts -D $PGDATA --restart
 */
import * as fs from 'fs';
import * as path from 'path';
import { defineWorker, PgError, type BufferSnapshot, type WorkerContext, type WorkerDefinition } from 'pg-node-worker';

export const DUMP_FILE = 'node_worker_autoprewarm.blocks';
const DEFAULT_INTERVAL_S = 300;
/** blocks per prewarm() call: between calls the worker checks for shutdown and free buffers */
const CHUNK = 512;
/** how often (in blocks read) it checks that shared_buffers still has free buffers */
const FREE_CHECK_EVERY = 4096;
const FORKS = ['main', 'fsm', 'vm', 'init'] as const;

/** one relation fork listed in the dump file, with its blocks in order */
interface ListedFork {
  database: number;
  tablespace: number;
  relfilenode: number;
  fork: number;
  blocks: number[];
}

function intervalSeconds(ctx: WorkerContext): number {
  const raw = ctx.setting('autoprewarm.interval');
  const n = raw === null ? DEFAULT_INTERVAL_S : Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    ctx.log.warning(`autoprewarm.interval = ${JSON.stringify(raw)} is not a number of seconds >= 0; using ${DEFAULT_INTERVAL_S}`);
    return DEFAULT_INTERVAL_S;
  }
  return n;
}

/** Parses the dump file into forks, keeping those of the given databases (all: null). */
function readDump(file: string, databases: Set<number> | null): { listed: number; forks: ListedFork[] } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { listed: 0, forks: [] };
    throw err;
  }
  const lines = text.split('\n');
  const header = /^<<(\d+)>>$/.exec(lines[0] ?? '');
  if (!header) throw new Error(`${file}: the first line is not a "<<count>>" header`);
  const forks: ListedFork[] = [];
  let current: ListedFork | null = null;
  let listed = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const f = line.split(',');
    if (f.length !== 5) throw new Error(`${file}:${i + 1}: expected 5 comma-separated numbers`);
    listed++;
    const [database, tablespace, relfilenode, fork, block] = f.map(Number);
    if (databases !== null && !databases.has(database)) continue;
    if (!current || current.database !== database || current.tablespace !== tablespace || current.relfilenode !== relfilenode || current.fork !== fork) {
      current = { database, tablespace, relfilenode, fork, blocks: [] };
      forks.push(current);
    }
    current.blocks.push(block);
  }
  return { listed, forks };
}

/** Writes the buffer list atomically: temporary file, fsync, rename, fsync of the directory. */
export function writeDump(file: string, s: BufferSnapshot, tmpSuffix: string): number {
  // sorted like pg_prewarm's list: a later load reads each relation in block order
  const order = new Uint32Array(s.count);
  for (let i = 0; i < s.count; i++) order[i] = i;
  order.sort((a, b) =>
    s.database[a] - s.database[b] || s.tablespace[a] - s.tablespace[b] || s.relfilenode[a] - s.relfilenode[b] ||
    s.fork[a] - s.fork[b] || s.block[a] - s.block[b]);
  const parts: string[] = [`<<${s.count}>>\n`];
  for (const i of order) parts.push(`${s.database[i]},${s.tablespace[i]},${s.relfilenode[i]},${s.fork[i]},${s.block[i]}\n`);

  const tmp = `${file}.tmp.${tmpSuffix}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, parts.join(''));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
  return s.count;
}

/** Consecutive blocks as [first, last] runs of at most CHUNK blocks, below nblocks. */
function runs(blocks: number[], nblocks: number): [number, number][] {
  const out: [number, number][] = [];
  for (const b of blocks) {
    if (b >= nblocks) break; // sorted: the rest is past the end too
    const last = out[out.length - 1];
    if (last && b === last[1] + 1 && b - last[0] < CHUNK) last[1] = b;
    else if (!last || b > last[1]) out.push([b, b]);
  }
  return out;
}

/** Loads the listed blocks of this database (and of the shared catalogs when asked); returns blocks read. */
async function load(ctx: WorkerContext, file: string, myDatabase: number, shared: boolean): Promise<{ done: boolean; read: number; listed: number }> {
  const { listed, forks } = readDump(file, new Set(shared ? [myDatabase, 0] : [myDatabase]));
  if (forks.length === 0) return { done: true, read: 0, listed };

  // relfilenode → relation, and each fork's current size, in one query
  const sizes = ctx.sql<{ rel: bigint | null; blocks: bigint | null }>`
    SELECT r::oid::int8 AS rel, pg_relation_size(r, fork) / current_setting('block_size')::int8 AS blocks
      FROM unnest(${forks.map((f) => f.tablespace)}::oid[], ${forks.map((f) => f.relfilenode)}::oid[],
                  ${forks.map((f) => FORKS[f.fork] ?? 'main')}::text[]) WITH ORDINALITY AS u(spc, node, fork, n)
      LEFT JOIN LATERAL pg_filenode_relation(spc, node) AS r ON true
     ORDER BY n`;

  let read = 0;
  let sinceCheck = 0;
  for (let i = 0; i < forks.length; i++) {
    const { rel, blocks } = sizes[i];
    if (rel === null || blocks === null) continue; // dropped or rewritten since the dump
    const fork = FORKS[forks[i].fork] ?? 'main';
    forks[i].blocks.sort((a, b) => a - b); // already sorted in a list this worker wrote
    for (const [first, last] of runs(forks[i].blocks, Number(blocks))) {
      if (ctx.signal.aborted) return { done: false, read, listed };
      if (sinceCheck >= FREE_CHECK_EVERY) {
        sinceCheck = 0;
        if (ctx.buffers.stats().unused === 0) {
          ctx.log.info('autoprewarm: shared_buffers is full; stopping the load');
          return { done: true, read, listed };
        }
      }
      try {
        const n = ctx.buffers.prewarm(Number(rel), { fork, first, last });
        read += n;
        sinceCheck += n;
      } catch (err) {
        if (ctx.signal.aborted) return { done: false, read, listed };
        if (!(err instanceof PgError)) throw err;
        // no SELECT on it for this worker's role: skip it rather than fail (and restart) forever
        if (err.code === '42501') ctx.log.warning(`autoprewarm: skipping relation ${rel}: ${err.message}`);
        // dropped or truncated meanwhile, or not allowed: skip the rest of this fork
        if (err.code === '42P01' || err.code === '22023' || err.code === '42501') break;
        throw err;
      }
      // let the event loop run (SIGTERM, calls) between chunks
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return { done: true, read, listed };
}

/**
 * Whether a database's blocks were loaded since the server started: a shared region outlives a
 * restart of the worker (after a failure) but not a server restart. 0: not yet, 1: loading (a
 * process that died loading leaves 1: load again), 2: loaded.
 */
function loadState(ctx: WorkerContext, database: number): Int32Array {
  return new Int32Array(ctx.shared(`autoprewarm:${database}`, 4));
}

/** Loads this database's blocks unless that was done; false when the load was interrupted. */
async function loadOnce(ctx: WorkerContext, file: string, myDatabase: number, leader: boolean): Promise<boolean> {
  const state = loadState(ctx, myDatabase);
  if (Atomics.load(state, 0) === 2) return true;
  Atomics.store(state, 0, 1);
  const t0 = Date.now();
  const r = await load(ctx, file, myDatabase, leader);
  Atomics.store(state, 0, r.done ? 2 : 0);
  // the leader's line counts the whole list; a child's names its database
  const what = leader ? `${r.read} blocks (${r.listed} listed)` : `${r.read} blocks of database "${ctx.worker.database}"`;
  ctx.log.info(`autoprewarm: ${r.done ? 'loaded' : 'interrupted after'} ${what} in ${Date.now() - t0} ms`);
  return r.done;
}

/**
 * The leader's second step: one child per other database the list names and that is not loaded
 * yet, one at a time (each reads as fast as the disk allows), each connected to its database.
 * Returns how many children loaded a database.
 */
async function loadOtherDatabases(ctx: WorkerContext, file: string, myDatabase: number): Promise<number> {
  const listed = [...new Set(readDump(file, null).forks.map((f) => f.database))].filter((d) => d !== 0 && d !== myDatabase);
  let children = 0;
  if (listed.length === 0) return children;
  const databases = ctx.sql<{ oid: bigint; datname: string; datallowconn: boolean }>`
    SELECT oid::int8 AS oid, datname, datallowconn FROM pg_database WHERE oid = ANY(${listed}::oid[]) ORDER BY oid`;
  for (const { oid, datname, datallowconn } of databases) {
    if (ctx.signal.aborted) return children;
    if (Atomics.load(loadState(ctx, Number(oid)), 0) === 2) continue;
    if (!datallowconn) continue; // template0: nothing of it is ever read into shared_buffers
    try {
      const child = ctx.launch(ctx.worker.name, { load: Number(oid) }, { database: datname });
      if ((await child.exited) === 0) children++;
    } catch (err) {
      if (!(err instanceof PgError)) throw err;
      ctx.log.warning(`autoprewarm: not loading database "${datname}": ${err.message}`);
    }
  }
  return children;
}

export function autoprewarmWorker(options: { name?: string; database?: string } = {}): WorkerDefinition {
  return defineWorker({
    name: options.name ?? 'autoprewarm',
    database: options.database ?? 'postgres',
    start: 'consistent',
    restart: 10,
    async main(ctx) {
      const file = path.join(ctx.setting('data_directory') ?? '.', DUMP_FILE);
      const myDatabase = Number(ctx.sql<{ oid: bigint }>`SELECT oid::int8 AS oid FROM pg_database WHERE datname = current_database()`[0].oid);

      // a child launched by the leader: load its database, then end
      if ((ctx.args as { load?: number } | null)?.load !== undefined) {
        await loadOnce(ctx, file, myDatabase, false);
        return;
      }

      let loaded = await loadOnce(ctx, file, myDatabase, true);
      if (loaded) {
        const children = await loadOtherDatabases(ctx, file, myDatabase);
        loaded = !ctx.signal.aborted;
        // from here on node_worker.wake() reaches the sleep below
        ctx.log.info(`autoprewarm: start-up load finished (${children} other databases loaded by child workers)`);
      }

      // after an interrupted load the old list stays: the buffers hold only part of it
      const dump = (why: string) => {
        if (!loaded) return;
        const t0 = Date.now();
        const n = writeDump(file, ctx.buffers.snapshot(), `${ctx.worker.name}.${ctx.worker.pid}`);
        ctx.log.info(`autoprewarm: wrote ${n} blocks (${why}) in ${Date.now() - t0} ms`);
      };

      // node_worker.wake('autoprewarm') writes the list now
      while (!ctx.signal.aborted) {
        const interval = intervalSeconds(ctx);
        const why = await ctx.sleep(interval > 0 ? interval * 1000 : 24 * 3600 * 1000);
        if (why === 'abort') break;
        if (why === 'reload') continue; // sleep again with the interval as now set
        if (why === 'wake' || interval > 0) dump(why === 'wake' ? 'wake' : 'interval');
      }
      dump('shutdown');
    },
  });
}

export default autoprewarmWorker();
