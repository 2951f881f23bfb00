/**
 * node_worker.preload_runtime: the postmaster loads the workers' runtime, and libnode with it, at
 * server start, so that each worker inherits it loaded instead of loading it after its fork.
 * Asserted: with the setting (the default) the postmaster maps libnode and workers run; every other
 * child inherits the mappings, and hundreds of connections, parallel workers and a terminated backend
 * come and go without a process dying (each ends before libnode's static destructors); a worker
 * starts without loading the built-in modules only some workers use;
 * with it off the postmaster maps no libnode and workers still run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cluster } from './helpers/cluster';
import { ABORT, RESET } from './helpers/faults';

let cluster: Cluster;

/** Whether process pid maps a file whose name contains `what`. */
function maps(pid: number, what: string): boolean {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').some((l) => path.basename(l.split(/\s+/)[5] ?? '').includes(what));
}

beforeAll(async () => {
  cluster = await Cluster.create({});
  await cluster.deployFile('messaging-silent.ts');
  await cluster.deployFile('preload-modules.ts');
  await cluster.start();
}, 60000);
afterAll(async () => cluster?.destroy());

it('loads the runtime into the postmaster by default; connections come and go unharmed', async () => {
  expect(maps(cluster.postmasterPid(), 'libnode')).toBe(true);
  expect(maps(cluster.postmasterPid(), 'pg_node_worker_runtime')).toBe(true);
  const worker = await cluster.waitForWorker('silent');
  expect(maps(worker, 'libnode')).toBe(true);
  // backends inherit libnode without initialising it, and must exit cleanly
  for (let i = 0; i < 200; i++) {
    const c = await cluster.client();
    await c.query('SELECT 1');
    await c.end();
  }
  // they end before libnode's static destructors, with the status they exit with: parallel
  // workers (bgworkers, whose status the postmaster checks) and a terminated backend (FATAL, 1)
  const c = await cluster.client();
  await c.query('CREATE TABLE preload_rows AS SELECT generate_series(1, 100000) AS i');
  await c.query('SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0');
  for (let i = 0; i < 5; i++) {
    const plan = (await c.query('EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM preload_rows')).rows[0]['QUERY PLAN'];
    expect(JSON.stringify(plan)).toMatch(/"Workers Launched":[12]/);
  }
  const victim = await cluster.client();
  const victimPid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  victim.on('error', () => {});
  await c.query('SELECT pg_terminate_backend($1, 5000)', [victimPid]);
  await c.end();
  expect(await cluster.workerPid('silent')).toBe(worker);
  expect(cluster.log()).not.toMatch(RESET);
  expect(cluster.log()).not.toMatch(ABORT);
  expect(cluster.log()).not.toMatch(/was terminated by signal|could not preload/);
}, 60000);

it('a worker starts without loading the built-in modules that only some workers use', async () => {
  // each costs every worker's start-up milliseconds (crypto 6-10 ms on Node 24) and its memory
  const line = (await cluster.waitForLog(/built-in modules at start: (.*)/))[1].split(' ');
  expect(line).toContain('fs');
  for (const heavy of ['crypto', 'child_process', 'net', 'http', 'https', 'tls', 'dgram', 'inspector', 'worker_threads', 'zlib'])
    expect(line, heavy).not.toContain(heavy);
}, 60000);

it('with node_worker.preload_runtime off the postmaster maps no libnode, and workers still run', async () => {
  fs.appendFileSync(path.join(cluster.datadir, 'postgresql.conf'), '\nnode_worker.preload_runtime = off\n');
  await cluster.restart();
  expect(maps(cluster.postmasterPid(), 'libnode')).toBe(false);
  const worker = await cluster.waitForWorker('silent');
  expect(maps(worker, 'libnode')).toBe(true);
  expect((await cluster.query<Record<string, string>>('SHOW node_worker.preload_runtime'))[0]['node_worker.preload_runtime']).toBe('off');
}, 60000);
