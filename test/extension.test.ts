/**
 * The library and the SQL extension: loading rules, settings, CREATE EXTENSION.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from './helpers/cluster';

describe('pg_node_worker outside shared_preload_libraries', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.create({ preload: false });
    await cluster.start();
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('refuses LOAD and CREATE EXTENSION with an error and a hint', async () => {
    for (const sql of ["LOAD 'pg_node_worker'", 'CREATE EXTENSION pg_node_worker']) {
      const err = await cluster.query(sql).then(() => null, (e) => e);
      expect(err).toMatchObject({ code: '55000', message: 'pg_node_worker must be loaded via shared_preload_libraries' });
      expect(err.hint).toMatch(/shared_preload_libraries/);
    }
    expect(await cluster.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  });
});

describe('pg_node_worker preloaded', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.create();
    await cluster.start();
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('defines its settings and reserves the prefix', async () => {
    const rows = await cluster.query<{ name: string; setting: string; context: string }>(
      "SELECT name, setting, context FROM pg_settings WHERE name LIKE 'node_worker.%' ORDER BY name",
    );
    expect(rows).toEqual([
      { name: 'node_worker.buffer_limit_mb', setting: '1024', context: 'sighup' },
      { name: 'node_worker.directory', setting: 'node_worker', context: 'postmaster' },
      { name: 'node_worker.heap_limit_mb', setting: '256', context: 'postmaster' },
      { name: 'node_worker.inspect_optional', setting: 'off', context: 'sighup' },
      { name: 'node_worker.inspect_port', setting: '0', context: 'sighup' },
      { name: 'node_worker.inspect_worker', setting: '', context: 'sighup' },
      { name: 'node_worker.jobs_keep_done_s', setting: '300', context: 'sighup' },
      { name: 'node_worker.max_failures', setting: '5', context: 'sighup' },
      { name: 'node_worker.max_message_kb', setting: '64', context: 'postmaster' },
      { name: 'node_worker.max_workers', setting: '64', context: 'postmaster' },
      { name: 'node_worker.preload_runtime', setting: 'on', context: 'postmaster' },
      { name: 'node_worker.queue_size_kb', setting: '256', context: 'postmaster' },
      { name: 'node_worker.schedule_runs_keep', setting: '1000', context: 'sighup' },
      { name: 'node_worker.shared_memory_mb', setting: '16', context: 'postmaster' },
      { name: 'node_worker.shutdown_grace_ms', setting: '2000', context: 'sighup' },
    ]);
    const err = await cluster.query('SET node_worker.bogus = 1').then(() => null, (e) => e);
    expect(err?.message).toMatch(/invalid configuration parameter name|reserved prefix/);
  });

  it('CREATE EXTENSION gives node_worker.directory(), for superusers only', async () => {
    await cluster.query('CREATE EXTENSION pg_node_worker');
    const [{ dir }] = await cluster.query<{ dir: string }>('SELECT node_worker.directory() AS dir');
    expect(dir).toBe(`${cluster.datadir}/node_worker`);
    await cluster.query('CREATE ROLE mallory LOGIN');
    const client = await cluster.client('postgres', 'mallory');
    try {
      const err = await client.query('SELECT node_worker.directory()').then(() => null, (e) => e);
      expect(err?.code).toBe('42501');
    } finally {
      await client.end();
    }
  });
});
