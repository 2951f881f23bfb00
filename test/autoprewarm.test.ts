/**
 * examples/autoprewarm.ts — pg_prewarm's autoprewarm in TypeScript — on a real cluster: a warmed
 * 50 MB table is back in shared_buffers after a restart (>= 90%, checked with pg_buffercache)
 * where a restart without the worker leaves it cold (< 10%); the dump file's format and atomic
 * rewrites (interval, wake, shutdown); the blocks of another database, loaded by a child the
 * worker launches there; a hot standby made from the primary loads it too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, REPO, waitFor } from './helpers/cluster';

let primary: Cluster;
let replica: Cluster | undefined;

const DUMP = 'node_worker_autoprewarm.blocks';

/** share of table `warm` (main fork) that is in shared_buffers, from pg_buffercache */
async function warmShare(c: Cluster): Promise<number> {
  const [r] = await c.query<{ cached: number; blocks: number }>(
    `SELECT (SELECT count(*) FROM pg_buffercache
              WHERE relfilenode = pg_relation_filenode('warm') AND relforknumber = 0
                AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))::int AS cached,
            (pg_relation_size('warm') / 8192)::int AS blocks`,
  );
  return r.cached / r.blocks;
}

beforeAll(async () => {
  primary = await Cluster.create({
    settings: { shared_buffers: "'128MB'", autovacuum: 'off' },
  });
  await primary.start();
  await primary.query('CREATE EXTENSION pg_buffercache; CREATE EXTENSION pg_prewarm');
  // ~50 MB: bigger than shared_buffers / 4, so a seq scan would only use a small ring of buffers
  await primary.query(`CREATE TABLE warm AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 230000) g`);
  await primary.query('VACUUM ANALYZE warm');
  const [{ mb }] = await primary.query<{ mb: number }>(`SELECT pg_relation_size('warm') / 1048576 AS mb`);
  expect(Number(mb)).toBeGreaterThanOrEqual(45);
}, 120000);

afterAll(async () => {
  await replica?.destroy();
  await primary?.destroy();
});

describe('examples/autoprewarm.ts', () => {
  it('without the worker, a restart leaves the table cold', async () => {
    await primary.query("SELECT pg_prewarm('warm')");
    expect(await warmShare(primary)).toBe(1);
    await primary.restart();
    const share = await warmShare(primary);
    console.log(`without the worker: ${(share * 100).toFixed(1)}% of the warmed table in shared_buffers after a restart`);
    expect(share).toBeLessThan(0.1);
  });

  it('with the worker, a warmed table is back in shared_buffers after a restart', async () => {
    await primary.deployFile(path.join(REPO, 'examples', 'autoprewarm.ts'));
    let from = primary.log().length;
    await primary.restart();
    // no dump file yet: nothing to load
    await primary.waitForLog(/autoprewarm: loaded 0 blocks \(0 listed\)/, 20000, from);
    await primary.query("SELECT pg_prewarm('warm')");

    from = primary.log().length;
    await primary.restart(); // the worker writes the list at shutdown...
    expect(primary.log().slice(from)).toMatch(/autoprewarm: wrote \d+ blocks \(shutdown\)/);
    const m = await primary.waitForLog(/autoprewarm: loaded (\d+) blocks \((\d+) listed\)/, 30000, from); // ...and loads it
    expect(Number(m[1])).toBeGreaterThan(5000);
    await primary.waitForLog(/autoprewarm: start-up load finished/, 30000, from);
    const share = await warmShare(primary);
    console.log(`with the worker: ${(share * 100).toFixed(1)}% of the warmed table in shared_buffers after a restart; ${m[0]}`);
    expect(share).toBeGreaterThanOrEqual(0.9);
  });

  it('writes the list in pg_prewarm format: a count header, then sorted block lines', async () => {
    const text = fs.readFileSync(path.join(primary.datadir, DUMP), 'utf8');
    const lines = text.trimEnd().split('\n');
    const header = /^<<(\d+)>>$/.exec(lines[0]);
    expect(header).not.toBeNull();
    expect(Number(header![1])).toBe(lines.length - 1);
    const rows = lines.slice(1).map((l) => l.split(',').map(Number));
    for (const r of rows) expect(r).toHaveLength(5);
    for (let i = 1; i < rows.length; i++) {
      const a = rows[i - 1], b = rows[i];
      const cmp = a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || a[3] - b[3] || a[4] - b[4];
      expect(cmp).toBeLessThan(0);
    }
    const [{ node, db }] = await primary.query<{ node: string; db: string }>(
      "SELECT pg_relation_filenode('warm')::text AS node, (SELECT oid FROM pg_database WHERE datname = current_database())::text AS db",
    );
    expect(rows.filter((r) => r[0] === Number(db) && r[2] === Number(node) && r[3] === 0).length).toBeGreaterThan(5000);
    expect(fs.readdirSync(primary.datadir).filter((f) => f.startsWith(`${DUMP}.tmp`))).toEqual([]);
  });

  it('rewrites the list every autoprewarm.interval seconds and on wake, atomically', async () => {
    await primary.query("CREATE EXTENSION IF NOT EXISTS pg_node_worker");
    const file = path.join(primary.datadir, DUMP);
    let from = primary.log().length;
    await primary.query("SELECT node_worker.wake('autoprewarm')");
    await primary.waitForLog(/autoprewarm: wrote \d+ blocks \(wake\)/, 10000, from);

    from = primary.log().length;
    const conf = path.join(primary.datadir, 'postgresql.conf');
    fs.appendFileSync(conf, '\nautoprewarm.interval = 1\n');
    primary.reload();
    await primary.query("SELECT node_worker.wake('autoprewarm')"); // ends the current (300 s) sleep
    const before = fs.statSync(file).mtimeMs;
    await primary.waitForLog(/autoprewarm: wrote \d+ blocks \(interval\)/, 10000, from);
    await waitFor('the file to be rewritten', () => fs.statSync(file).mtimeMs > before, 5000);
    fs.appendFileSync(conf, '\nautoprewarm.interval = 300\n');
    primary.reload();
  });

  it('does not load again when only the worker restarts', async () => {
    const from = primary.log().length;
    await primary.query("SELECT node_worker.restart('autoprewarm')");
    await primary.waitForLog(/autoprewarm: wrote \d+ blocks \(shutdown\)/, 10000, from);
    await new Promise((r) => setTimeout(r, 1500));
    expect(primary.log().slice(from)).not.toMatch(/autoprewarm: loaded/);
  });

  it('loads the blocks of another database through a child launched in that database', async () => {
    await primary.query('CREATE DATABASE app');
    await primary.query('CREATE EXTENSION pg_buffercache', [], 'app');
    // ~8 MB: a seq scan of a table under shared_buffers / 4 keeps all its blocks
    await primary.query(`CREATE TABLE warm AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 36000) g`, [], 'app');
    await primary.query('SELECT count(*) FROM warm', [], 'app');
    const appShare = async () => {
      const [r] = await primary.query<{ cached: number; blocks: number }>(
        `SELECT (SELECT count(*) FROM pg_buffercache
                  WHERE relfilenode = pg_relation_filenode('warm') AND relforknumber = 0
                    AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))::int AS cached,
                (pg_relation_size('warm') / 8192)::int AS blocks`,
        [],
        'app',
      );
      return r.cached / r.blocks;
    };
    expect(await appShare()).toBe(1);
    const from = primary.log().length;
    await primary.restart(); // the list written at shutdown names app's blocks
    await primary.waitForLog(/autoprewarm: loaded (\d+) blocks \((\d+) listed\)/, 30000, from);
    const m = await primary.waitForLog(/autoprewarm: loaded (\d+) blocks of database "app"/, 30000, from);
    expect(Number(m[1])).toBeGreaterThan(900);
    await primary.waitForLog(/autoprewarm: start-up load finished \([1-9]\d* other databases/, 30000, from);
    expect(await appShare()).toBeGreaterThanOrEqual(0.9);
    // the child ran in app and ended; the leader runs on
    const rows = await primary.query<{ kind: string; state: string; database: string }>(
      "SELECT kind, state, database FROM node_worker.workers WHERE name = 'autoprewarm' ORDER BY kind DESC, database",
    );
    expect(rows).toContainEqual({ kind: 'static', state: 'running', database: 'postgres' });
    expect(rows).toContainEqual({ kind: 'dynamic', state: 'stopped', database: 'app' });
    expect(primary.log().slice(from)).not.toMatch(/autoprewarm.*(failed|ERROR)|ERROR.*autoprewarm/);
  });

  it('skips listed blocks of relations that are gone and blocks past the end', async () => {
    await primary.query('CREATE TABLE small (x int); INSERT INTO small VALUES (1)');
    const [{ db, node }] = await primary.query<{ db: string; node: string }>(
      "SELECT (SELECT oid FROM pg_database WHERE datname = current_database())::text AS db, pg_relation_filenode('small')::text AS node",
    );
    primary.stop(); // the worker writes the list; add stale entries while the server is down
    const file = path.join(primary.datadir, DUMP);
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(1);
    lines.push(`${db},1663,999999,0,0`, `${db},1663,${node},0,400`);
    const key = (l: string) => l.split(',').map(Number);
    lines.sort((a, b) => {
      const x = key(a), y = key(b);
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] || x[3] - y[3] || x[4] - y[4];
    });
    fs.writeFileSync(file, `<<${lines.length}>>\n${lines.join('\n')}\n`);
    const from = primary.log().length;
    await primary.start();
    const m = await primary.waitForLog(/autoprewarm: loaded (\d+) blocks \((\d+) listed\)/, 30000, from);
    expect(Number(m[2])).toBe(lines.length);
    // the children are done: a wake now reaches the leader's sleep
    await primary.waitForLog(/autoprewarm: start-up load finished/, 30000, from);
    expect(primary.log().slice(from)).not.toMatch(/autoprewarm.*(failed|ERROR)|ERROR.*autoprewarm/);
    expect(await warmShare(primary)).toBeGreaterThanOrEqual(0.9);
  });

  it('runs on a hot standby: a replica made from the primary loads the list', async () => {
    // the base backup copies the data directory, the list and the deployed worker included
    await primary.query("SELECT pg_prewarm('warm')");
    const from0 = primary.log().length;
    await primary.query("SELECT node_worker.wake('autoprewarm')");
    await primary.waitForLog(/autoprewarm: wrote \d+ blocks \(wake\)/, 10000, from0);
    replica = await Cluster.replicaOf(primary);
    expect(fs.existsSync(path.join(replica.datadir, DUMP))).toBe(true);
    await replica.start();
    await replica.waitForLog(/autoprewarm: loaded (\d+) blocks \((\d+) listed\)/, 30000);
    // and app's, by a child launched on the standby
    await replica.waitForLog(/autoprewarm: loaded (\d+) blocks of database "app"/, 30000);
    await replica.waitForLog(/autoprewarm: start-up load finished/, 30000);
    expect(await replica.query('SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
    expect(await warmShare(replica)).toBeGreaterThanOrEqual(0.9);
    // and writes its own list there
    const from = replica.log().length;
    await replica.query("SELECT node_worker.wake('autoprewarm')");
    await replica.waitForLog(/autoprewarm: wrote \d+ blocks \(wake\)/, 10000, from);
  });
});
