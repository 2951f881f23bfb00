/**
 * The security boundaries outside the JavaScript: a worker's SQL runs as its role; the settings
 * that point at files are hidden from and unchangeable by non-superusers; deployed files belong to
 * the data directory's owner; no SQL of a non-superuser loads the runtime or writes into the worker
 * directory; nothing in a manifest loads a file from outside that directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli';
import { alive, Cluster, sleep, waitFor } from './helpers/cluster';
import { ABORT, connect, manifest, queryAs, RESET, workerDir, writeOwned } from './helpers/faults';
import { fixture, workerDirFiles } from './helpers/workers';

describe('security', () => {
  let cluster: Cluster;
  let outsideDir: string;

  beforeAll(async () => {
    cluster = await Cluster.create();
    await cluster.start();
    await cluster.query(`
      CREATE ROLE app LOGIN;
      CREATE ROLE mallory LOGIN;
      CREATE TABLE secret (v text);
      INSERT INTO secret VALUES ('top secret');
      CREATE TABLE app_log (v text);
      GRANT SELECT, INSERT ON app_log TO app;`);
    cluster.stop();
    await cluster.deployFile('faults-security-limited.ts');
    // a bundle that is a symbolic link to a file outside the directory (see the test)
    outsideDir = path.join(cluster.dir, 'outside');
    fs.mkdirSync(outsideDir);
    const built = cli(['build', fixture('faults-security-linked.ts'), '-o', path.join(outsideDir, 'linked.js')]);
    expect(built.status, built.stderr).toBe(0);
    fs.symlinkSync(path.join(outsideDir, 'linked.js'), path.join(workerDir(cluster), 'linked.js'));
    writeOwned(cluster, 'linked.json', manifest('linked', { restart: 'never' }));
    await cluster.start();
    await cluster.waitForLog(/limited: security report/);
  }, 90000);
  afterAll(async () => cluster?.destroy());

  const report = () => JSON.parse(cluster.log().match(/limited: security report (.*)/)![1]);

  it("the worker's SQL runs as its role: no grant, no access (42501); granted tables work", () => {
    const r = report();
    expect(r.whoami).toEqual({ ok: { u: 'app', s: 'app', su: false } });
    expect(r.secret).toMatchObject({ code: '42501', message: 'permission denied for table secret' });
    expect(r.insertSecret).toMatchObject({ code: '42501' });
    expect(r.txSecret).toMatchObject({ code: '42501' });
    expect(r.granted).toEqual({ ok: 1 });
    expect(r.setRole).toMatchObject({ code: '42501' });
    expect(r.sessionAuth).toMatchObject({ code: '42501' });
    expect(r.copyTo).toMatchObject({ code: '42501' });
    expect(r.readFile).toMatchObject({ code: '42501' });
    expect(r.load).toMatchObject({ code: '42501', message: 'access to library "pg_node_worker_runtime" is not allowed' });
    expect(r.createC).toMatchObject({ code: '42501', message: 'permission denied for language c' });
    expect(fs.existsSync('/tmp/pgnw-should-not-exist')).toBe(false);
  });

  it('node_worker.directory is hidden from and unchangeable by a non-superuser, in SQL and in the worker', async () => {
    const r = report();
    expect(r.show).toMatchObject({ code: '42501' });
    // PostgreSQL 15/16's wording, then 17's
    expect(r.show.message).toMatch(/must be superuser or have privileges of pg_read_all_settings to examine "node_worker\.directory"|permission denied to examine "node_worker\.directory"/);
    expect(r.pgSettings).toEqual({ ok: 0 });
    // by design: ctx.setting() is the worker's own code, not SQL
    expect(r.setting).toEqual({ ok: 'node_worker' });

    const denied = async (sql: string, codes: string[]) => {
      const res = await queryAs(cluster, 'mallory', sql);
      expect(res.error, sql).toBeDefined();
      expect(codes, `${sql}: ${res.error!.code} ${res.error!.message}`).toContain(res.error!.code);
      return res.error!;
    };
    expect((await denied('SHOW node_worker.directory', ['42501'])).message).toMatch(/must be superuser|permission denied to examine/);
    await denied("SELECT current_setting('node_worker.directory')", ['42501']);
    await denied("SELECT current_setting('node_worker.directory', true)", ['42501']);
    // every node_worker.* setting that holds a string (a path, a worker's name) is hidden from
    // non-superusers, and so are the inspector's (where an unauthenticated debugger listens); the
    // other numbers are visible; none can be changed in a session
    const mine = await cluster.query<{ name: string; vartype: string; context: string }>(
      "SELECT name, vartype, context FROM pg_settings WHERE name LIKE 'node_worker.%' ORDER BY name",
    );
    expect(mine.map((r) => r.name)).toContain('node_worker.directory');
    const visible = await queryAs(cluster, 'mallory', "SELECT name FROM pg_settings WHERE name LIKE 'node_worker.%' ORDER BY name");
    const hidden = (r: { name: string; vartype: string }) => r.vartype === 'string' || r.name.startsWith('node_worker.inspect_');
    expect(visible.rows!.map((r) => r.name)).toEqual(mine.filter((r) => !hidden(r)).map((r) => r.name));
    for (const r of mine) {
      expect(['postmaster', 'sighup'], `${r.name} context`).toContain(r.context);
      const set = await queryAs(cluster, 'mallory', `SET ${r.name} = ${r.vartype === 'string' ? "'/tmp'" : '1'}`);
      expect([r.name, set.error?.code]).toEqual([r.name, '55P02']);
    }
    console.log(`[security] node_worker settings: ${mine.map((r) => `${r.name} (${r.vartype}, ${r.context})`).join(', ')}; hidden from mallory: ${mine.filter(hidden).map((r) => r.name).join(', ')}`);
    const all = await queryAs(cluster, 'mallory', "SELECT count(*)::int AS n FROM pg_show_all_settings() WHERE name = 'node_worker.directory'");
    expect(all.rows).toEqual([{ n: 0 }]);
    // changing any of them: refused (postmaster/sighup context, superuser-only ALTER SYSTEM)
    await denied("SET node_worker.directory = '/tmp'", ['55P02', '42501']);
    await denied("SELECT set_config('node_worker.directory', '/tmp', false)", ['55P02', '42501']);
    await denied('SET node_worker.shutdown_grace_ms = 0', ['55P02']);
    await denied('SET node_worker.heap_limit_mb = 4096', ['55P02']);
    await denied("ALTER SYSTEM SET node_worker.directory = '/tmp'", ['42501']);
    await denied("ALTER ROLE mallory SET node_worker.directory = '/tmp'", ['55P02', '42501']);
    await denied("ALTER DATABASE postgres SET node_worker.directory = '/tmp'", ['42501', '55P02']);
    // the superuser sees the value unchanged
    expect(await cluster.query('SHOW node_worker.directory')).toEqual([{ 'node_worker.directory': 'node_worker' }]);
    expect(fs.readFileSync(path.join(cluster.datadir, 'postgresql.auto.conf'), 'utf8')).not.toMatch(/node_worker\.directory/);
    expect((await cluster.query("SELECT count(*)::int AS n FROM pg_db_role_setting")).at(0)).toEqual({ n: 0 });
  });

  it("deployed files belong to the data directory's owner and are not world-writable (nor readable)", () => {
    const owner = fs.statSync(cluster.datadir);
    const dir = workerDir(cluster);
    const check = (p: string, mode: number) => {
      const st = fs.statSync(p);
      expect([p, st.uid, st.gid], 'owner').toEqual([p, owner.uid, owner.gid]);
      expect([p, (st.mode & 0o7777).toString(8)]).toEqual([p, mode.toString(8)]);
      expect(st.mode & 0o007, `${p}: no access for others`).toBe(0);
    };
    check(dir, 0o750);
    for (const f of ['limited.js', 'limited.json']) check(path.join(dir, f), 0o640);
    // no temp files left by the atomic writes
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.') && f !== '.cache')).toEqual([]);
    if (process.getuid?.() === 0) expect(owner.uid).not.toBe(0);
  });

  it('a non-superuser cannot load the runtime library or a C function, nor write into the worker directory', async () => {
    const dir = workerDir(cluster);
    // without the workers' own code cache, written by the server's OS user
    const files = () => workerDirFiles(dir);
    const before = files();
    const attempts: [string, RegExp][] = [
      ["LOAD 'pg_node_worker_runtime'", /access to library "pg_node_worker_runtime" is not allowed/],
      ["LOAD '$libdir/pg_node_worker_runtime'", /access to library .* is not allowed/],
      [`LOAD '${path.join(dir, 'limited.js')}'`, /access to library .* is not allowed/],
      ["LOAD 'pg_node_worker'", /access to library "pg_node_worker" is not allowed/],
      ["CREATE FUNCTION pg_temp.evil() RETURNS void LANGUAGE c AS 'pg_node_worker_runtime', 'pg_node_worker_main'", /permission denied for language c/],
      [`COPY (SELECT '{}') TO '${path.join(dir, 'evil.json')}'`, /must be superuser or have privileges of the pg_write_server_files role|permission denied to COPY to a file/],
      [`COPY (SELECT 1) TO PROGRAM 'true'`, /must be superuser or have privileges of the pg_execute_server_program role|permission denied to COPY to or from an external program/],
      ["SELECT pg_ls_dir('node_worker')", /permission denied for function pg_ls_dir/],
      ["SELECT pg_read_file('node_worker/limited.json')", /permission denied for function pg_read_file/],
      [`CREATE TABLESPACE evil LOCATION '${dir}'`, /permission denied to create tablespace/],
      ["SELECT lo_export(0, 'node_worker/evil.js')", /permission denied for function lo_export/],
    ];
    for (const [sql, re] of attempts) {
      const r = await queryAs(cluster, 'mallory', sql);
      expect(r.error, sql).toBeDefined();
      expect([sql, r.error!.code]).toEqual([sql, '42501']);
      expect(r.error!.message, sql).toMatch(re);
    }
    expect(files()).toEqual(before);
    expect(cluster.log()).not.toMatch(RESET);
  });

  it("a superuser's LOAD of the runtime library into a backend starts no Node and leaves cleanly", async () => {
    const from = cluster.log().length;
    const client = await connect(cluster);
    await client.query("LOAD 'pg_node_worker_runtime'");
    const pid = (await client.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
    const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
    expect(maps).toMatch(/pg_node_worker_runtime\.so/);
    // no Node threads in a plain backend
    expect(fs.readdirSync(`/proc/${pid}/task`).length).toBe(1);
    expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await client.end();
    await waitFor('the backend to exit', () => !alive(pid), 5000);
    await sleep(300);
    expect(cluster.log().slice(from)).not.toMatch(RESET);
    expect(cluster.log().slice(from)).not.toMatch(ABORT);
  });

  it('nothing in a manifest loads a file outside the directory; a symbolic link put there by the OS owner is followed', async () => {
    // "../x.js", absolute paths and ".." are refused by the postmaster (see "bad input at the server
    // door"). A symlink inside the directory can only be made by the directory's owner (mode 0750,
    // no SQL function makes links or writes there for a non-superuser: previous test), who could
    // as well copy the file or point node_worker.directory elsewhere: it is followed.
    expect(fs.lstatSync(path.join(workerDir(cluster), 'linked.js')).isSymbolicLink()).toBe(true);
    const m = await cluster.waitForLog(/linked: linked: running from (.*)/);
    expect(m[1]).toBe(path.join(workerDir(cluster), 'linked.js'));
    expect(cluster.log()).toMatch(/registered worker "linked"/);
  });
});
