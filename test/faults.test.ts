/**
 * Faults from outside the JavaScript (issue #6): kill -9 of a worker while clients commit, bad
 * input at every door (CLI, manifests, bundles, databases and roles), a 50 MB bundle, and the
 * security boundaries (the worker's role, file-pointing settings, deployed files, loading files
 * from outside node_worker.directory).
 *
 * The long runs (pgbench soak, 1M SPI calls, memory outside the V8 heap) are in
 * test/faults/*.faults.ts: `npm run test:faults`.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, MAX_BUNDLE_BYTES } from '../src/cli/deploy';
import { CliError } from '../src/cli/errors';
import { alive, Cluster, REPO, sleep, waitFor } from './helpers/cluster';
import {
  ABORT,
  connect,
  exitOf,
  logTime,
  manifest,
  pidsOf,
  queryAs,
  RESET,
  rssKb,
  seconds,
  TS,
  workerDir,
  writeOwned,
} from './helpers/faults';
import { idleWorker } from './helpers/workers';

const CLI = path.join(REPO, 'bin', 'pg-node-worker.js');

// ---------------------------------------------------------------------------------------------

describe('kill -9 of a worker while 4 clients commit', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    // a worker that commits in a loop too, so the kill lands in the middle of its transactions
    cluster.deploy(
      'writer',
      `import { defineWorker } from 'pg-node-worker';
       export default defineWorker({ searchPath: ['public'], name: 'writer', restart: 1, async main(ctx) {
         ctx.sql\`CREATE TABLE IF NOT EXISTS writer_rows (n bigserial PRIMARY KEY, at timestamptz DEFAULT now())\`;
         ctx.log.info('writer: writing as pid ' + ctx.worker.pid);
         while (!ctx.signal.aborted) {
           ctx.transaction((tx) => { for (let i = 0; i < 10; i++) tx.sql\`INSERT INTO writer_rows DEFAULT VALUES\`; });
           await ctx.sleep(1);
         }
       } });`,
    );
    cluster.deploy('bystander', idleWorker('bystander'));
    await cluster.start();
    await cluster.query('CREATE TABLE commits (client int NOT NULL, n int NOT NULL, PRIMARY KEY (client, n))');
    await cluster.waitForLog(/writer: writer: writing as pid/);
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('the cluster resets and recovers; every acknowledged commit is there; the workers are back', async () => {
    const CLIENTS = 4;
    const writer = await cluster.waitForWorker('writer');
    const bystander = await cluster.waitForWorker('bystander');
    const pm = cluster.postmasterPid();
    const startTime = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    const checkpointer = await cluster.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");

    interface ClientRun {
      acked: number[];
      /** the commit was sent and no answer came: it may or may not have committed */
      uncertain: number[];
      errors: string[];
      ackedBeforeKill: number;
      /** seconds from the kill to this client's first error, and to its first commit after that */
      firstError: number | null;
      firstAckAfterError: number | null;
    }
    const state = { stop: false, killedAt: null as bigint | null };
    const committer = async (id: number): Promise<ClientRun> => {
      const run: ClientRun = { acked: [], uncertain: [], errors: [], ackedBeforeKill: 0, firstError: null, firstAckAfterError: null };
      let client: Awaited<ReturnType<typeof connect>> | null = null;
      let n = 0;
      while (!state.stop) {
        if (!client) {
          try {
            client = await connect(cluster);
          } catch (e) {
            if (state.killedAt !== null && run.firstError === null) run.firstError = seconds(state.killedAt);
            run.errors.push(`connect: ${(e as Error).message}`);
            await sleep(20);
            continue;
          }
        }
        n++;
        try {
          await client.query('INSERT INTO commits (client, n) VALUES ($1, $2)', [id, n]);
          run.acked.push(n);
          if (state.killedAt === null) run.ackedBeforeKill++;
          else if (run.firstError !== null && run.firstAckAfterError === null) run.firstAckAfterError = seconds(state.killedAt);
        } catch (e) {
          run.uncertain.push(n);
          if (state.killedAt !== null && run.firstError === null) run.firstError = seconds(state.killedAt);
          run.errors.push(`${(e as { code?: string }).code ?? '-'} ${(e as Error).message}`);
          await client.end().catch(() => undefined);
          client = null;
        }
      }
      await client?.end().catch(() => undefined);
      return run;
    };

    const runs = Array.from({ length: CLIENTS }, (_, i) => committer(i + 1));
    // let every client commit for a while, then kill the worker in the middle of it
    await sleep(1500);
    const from = cluster.log().length;
    state.killedAt = process.hrtime.bigint();
    process.kill(writer, 'SIGKILL');

    await cluster.waitForLog(/all server processes terminated; reinitializing/, 20000, from);
    await waitFor('the cluster to accept queries again', async () => {
      const c = await connect(cluster);
      try {
        return (await c.query('SELECT 1 AS ok')).rows[0].ok === 1;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, 30000, 20);
    const recovered = seconds(state.killedAt);
    // let the clients commit after the recovery too
    const newWriter = await cluster.waitForWorker('writer', 20000, writer);
    const workersBack = seconds(state.killedAt);
    const newBystander = await cluster.waitForWorker('bystander', 20000, bystander);
    await sleep(1500);
    state.stop = true;
    const results = await Promise.all(runs);

    const rows = await cluster.query<{ client: number; n: number }>('SELECT client, n FROM commits');
    const present = new Map<number, Set<number>>();
    for (const r of rows) {
      if (!present.has(r.client)) present.set(r.client, new Set());
      present.get(r.client)!.add(r.n);
    }
    let missing = 0;
    let acked = 0;
    let uncertainPresent = 0;
    let phantom = 0;
    results.forEach((r, i) => {
      const have = present.get(i + 1) ?? new Set<number>();
      acked += r.acked.length;
      const lost = r.acked.filter((n) => !have.has(n));
      missing += lost.length;
      expect(lost, `client ${i + 1}: acknowledged commits missing after the recovery`).toEqual([]);
      uncertainPresent += r.uncertain.filter((n) => have.has(n)).length;
      // nothing committed that the client did not send (every n it sent is acked or uncertain)
      const sent = new Set([...r.acked, ...r.uncertain]);
      phantom += [...have].filter((n) => !sent.has(n)).length;
    });
    const outages = results.map((r) => `${r.firstError?.toFixed(3)}-${r.firstAckAfterError?.toFixed(3)}`);
    const workerLine = cluster.log().slice(from).match(new RegExp(`^(${TS}) \\S+ \\[${newWriter}\\] LOG:  writer: writer: writing as pid`, 'm'));
    const killLine = cluster.log().slice(from).match(new RegExp(`^(${TS}) .*\\(PID ${writer}\\) was terminated by signal 9`, 'm'));
    console.log(
      `[kill -9 + 4 clients] ${acked} commits acknowledged (${results.map((r) => r.ackedBeforeKill).join('/')} before the kill, ` +
        `${results.map((r) => r.acked.length - r.ackedBeforeKill).join('/')} after), ${missing} missing, ${phantom} unexpected; ` +
        `${results.map((r) => r.uncertain.length).join('/')} in flight at the reset (${uncertainPresent} of them committed); ` +
        `errors per client ${results.map((r) => r.errors.length).join('/')}; ` +
        `each client's outage (s after the kill: first error - next commit) ${outages.join(', ')}; ` +
        `cluster answering after ${recovered.toFixed(3)} s, writer back (pid ${newWriter}) after ${workersBack.toFixed(3)} s` +
        (workerLine && killLine ? ` (its first JS line ${(logTime(workerLine[1]) - logTime(killLine[1])).toFixed(3)} s after the kill line)` : ''),
    );
    console.log(`[kill -9 + 4 clients] client errors seen (first of each): ${results.map((r) => r.errors[0]).join(' | ')}`);

    expect(missing).toBe(0);
    expect(phantom).toBe(0);
    for (const [i, r] of results.entries()) {
      expect(r.ackedBeforeKill, `client ${i + 1} committed before the kill`).toBeGreaterThan(10);
      // the reset closed every connection: each client saw it...
      expect(r.errors.length, `client ${i + 1} saw the reset`).toBeGreaterThan(0);
      // ...and committed again afterwards
      expect(r.acked.length - r.ackedBeforeKill, `client ${i + 1} committed after the recovery`).toBeGreaterThan(0);
    }
    const log = cluster.log().slice(from);
    expect(log).toMatch(new RegExp(`\\(PID ${writer}\\) was terminated by signal 9: Killed`));
    expect(log).toMatch(/all server processes terminated; reinitializing/);
    expect(log).not.toMatch(ABORT);
    // same postmaster, new worker processes
    expect(cluster.postmasterPid()).toBe(pm);
    expect(alive(pm)).toBe(true);
    expect(newWriter).not.toBe(writer);
    expect(newBystander).not.toBe(bystander);
    expect(alive(bystander)).toBe(false);
    const after = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    console.log(`[kill -9 + 4 clients] pg_postmaster_start_time ${startTime} -> ${after} (a reset keeps it: the checkpointer's pid tells)`);
    // every server process was replaced, the checkpointer included
    expect(checkpointer).toHaveLength(1);
    expect(await cluster.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")).not.toEqual(checkpointer);
    expect(recovered).toBeLessThan(10);
    // the writer's table is consistent after crash recovery (its last transaction is all or nothing)
    const w = await cluster.query<{ n: string }>('SELECT count(*) AS n FROM writer_rows');
    expect(Number(w[0].n) % 10).toBe(0);
  }, 90000);
});

// ---------------------------------------------------------------------------------------------

describe('bad input at the CLI door', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    cluster.deploy('steady', idleWorker('steady'));
  }, 60000);
  afterAll(async () => cluster?.destroy());

  const runCli = (args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env } });

  it.each([
    ['a/b', 'a/b'],
    ['..', '..'],
    ['../escape', '../escape'],
    ['NUL', 'a\\u0000b'],
    ['non-ASCII', 'h\\u00e9llo'],
    ['a dot', 'a.b'],
    ['too long', 'x'.repeat(64)],
  ])('deploy refuses the name %s with exit status 2 and writes nothing', (_what, nameLiteral) => {
    const before = fs.readdirSync(workerDir(cluster)).sort();
    const autoConf = fs.readFileSync(path.join(cluster.datadir, 'postgresql.auto.conf'), 'utf8');
    const file = path.join(cluster.workersDir, 'badname.ts');
    fs.writeFileSync(file, `import { defineWorker } from 'pg-node-worker';
export default defineWorker({ searchPath: ['public'], name: "${nameLiteral}", async main() {} });\n`);
    const r = runCli(['deploy', file, '-D', cluster.datadir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^pg-node-worker: .*invalid worker name/);
    expect(r.stderr).toMatch(/1 to 63 ASCII characters/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(fs.readdirSync(workerDir(cluster)).sort()).toEqual(before);
    expect(fs.readFileSync(path.join(cluster.datadir, 'postgresql.auto.conf'), 'utf8')).toBe(autoConf);
  });

  it('deploy refuses a source that does not parse, a module without a worker, a main that is not a function', () => {
    const before = fs.readdirSync(workerDir(cluster)).sort();
    const cases: [string, RegExp][] = [
      [`export default defineWorker({ searchPath: ['public'], name: 'x' main() {} });`, /bad\.ts:\d+:\d+: Expected/],
      [`export const main = () => 1;`, /does not export a worker/],
      [`export default defineWorker({ searchPath: ['public'], name: 'x', main: 42 } as any);`, /main must be a function/],
      [`throw new Error('boom at import');\nexport default defineWorker({ searchPath: ['public'], name: 'x', async main() {} });`, /threw: boom at import/],
      [`export default defineWorker({ searchPath: ['public'], name: 'x', database: '', async main() {} });`, /database must be a non-empty string/],
    ];
    for (const [body, re] of cases) {
      const file = path.join(cluster.workersDir, 'bad.ts');
      fs.writeFileSync(file, `import { defineWorker } from 'pg-node-worker';\n${body}\n`);
      const r = runCli(['deploy', file, '-D', cluster.datadir]);
      expect([body, r.status]).toEqual([body, 2]);
      expect(r.stderr).toMatch(re);
    }
    expect(fs.readdirSync(workerDir(cluster)).sort()).toEqual(before);
  });

  it(`deploy refuses a bundle over the limit (${MAX_BUNDLE_BYTES / 1024 / 1024} MiB) before writing anything`, async () => {
    expect(MAX_BUNDLE_BYTES).toBe(64 * 1024 * 1024);
    const before = fs.readdirSync(workerDir(cluster)).sort();
    const file = path.join(cluster.workersDir, 'fat.ts');
    fs.writeFileSync(file, `import { defineWorker } from 'pg-node-worker';
const BLOB = ${JSON.stringify(randomBytes(300 * 1024).toString('base64'))};
export default defineWorker({ searchPath: ['public'], name: 'fat', async main(ctx) { ctx.log.info(String(BLOB.length)); } });\n`);
    const err = await deploy(file, { pgdata: cluster.datadir, maxBundleBytes: 256 * 1024, log: () => undefined, warn: () => undefined }).then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(CliError);
    expect(err.message).toMatch(/^the bundle of worker "fat" is 4\d\d\.\d kB \(\d+ bytes\), more than the limit of 262144 bytes: .*keep large data out of the code/);
    expect(fs.readdirSync(workerDir(cluster)).sort()).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad input at the server door: manifests, bundles, databases, roles', () => {
  let cluster: Cluster;
  let dir: string;
  /** file -> the reason the postmaster must log for it */
  const skipped: Record<string, RegExp> = {};
  /** hand-written bundles that pass the postmaster's checks and fail in the runtime: the log line, and what node_worker.workers.last_error says */
  const broken: Record<string, RegExp> = {};
  const brokenWhy: Record<string, string> = {};
  let outsideMarker: string;

  beforeAll(async () => {
    cluster = await Cluster.create({ settings: { max_worker_processes: 32, 'node_worker.max_failures': 3 } });
    cluster.deploy('steady', idleWorker('steady'));
    dir = workerDir(cluster);
    const steadyJs = fs.readFileSync(path.join(dir, 'steady.js'));
    const put = (file: string, text: string | Buffer, re?: RegExp) => {
      writeOwned(cluster, file, text);
      if (re) skipped[file] = re;
    };

    // --- manifests the postmaster must skip, each with one LOG line naming the file and the reason
    put('garbage.json', '{ this is not json', /invalid JSON on line 1/);
    put('empty.json', '', /invalid JSON/);
    put('array.json', '[1, 2, 3]', /manifest must be a JSON object/);
    put('string.json', '"steady"', /manifest must be a JSON object/);
    put('binary.json', Buffer.concat([Buffer.from('{"name": "binary"'), Buffer.from([0, 1, 2, 0xff]), Buffer.from('}')]), /manifest contains a NUL byte/);
    put('latin1.json', Buffer.from(manifest('latin1', { database: 'caf\xe9' }), 'latin1'), /manifest is not valid UTF-8/);
    put('huge.json', manifest('huge', { padding: 'x'.repeat(70 * 1024) }), /manifest is larger than 64 kB/);
    put('deep.json', '{"name": "deep", "x": ' + '['.repeat(100) + ']'.repeat(100) + '}', /nested more than 32 levels deep/);
    put('dupe.json', '{"name": "dupe", "name": "dupe", "database": "postgres", "restart": 1, "start": "consistent", "bundle": "steady.js"}', /duplicate field "name"/);
    put('format2.json', manifest('format2', { format: 2, bundle: 'steady.js' }), /unsupported manifest format 2/);
    for (const field of ['name', 'database', 'restart', 'start', 'bundle'])
      put(`missing_${field}.json`, manifest(`missing_${field}`, { bundle: 'steady.js', [field]: undefined }), new RegExp(`missing field "${field}"`));
    put('restart_str.json', manifest('restart_str', { restart: 'soon', bundle: 'steady.js' }), /field "restart" must be an integer number of seconds or "never"/);
    put('restart_neg.json', manifest('restart_neg', { restart: -1, bundle: 'steady.js' }), /field "restart" must be between 0 and 86400 seconds/);
    put('restart_frac.json', manifest('restart_frac', { restart: 1.5, bundle: 'steady.js' }), /field "restart" must be an integer/);
    put('start_bad.json', manifest('start_bad', { start: 'later', bundle: 'steady.js' }), /field "start" must be "postmaster", "consistent" or "recovery-finished"/);
    put('db_number.json', manifest('db_number', { database: 5, bundle: 'steady.js' }), /field "database" must be a string/);
    put('db_empty.json', manifest('db_empty', { database: '', bundle: 'steady.js' }), /field "database" must not be empty/);
    put('db_long.json', manifest('db_long', { database: 'd'.repeat(64), bundle: 'steady.js' }), /field "database" is longer than 63 bytes/);
    put('role_empty.json', manifest('role_empty', { role: '', bundle: 'steady.js' }), /field "role" must be a non-empty string or null/);
    put('role_obj.json', manifest('role_obj', { role: { name: 'x' }, bundle: 'steady.js' }), /field "role" must be a string or null/);
    put('sha_bad.json', manifest('sha_bad', { sha256: 'xyz', bundle: 'steady.js' }), /field "sha256" must be 64 hexadecimal digits or null/);
    // names: a file name can hold neither '/' nor NUL, so those arrive through the "name" field
    put('mismatch.json', manifest('steady', { bundle: 'steady.js' }), /field "name" does not match the file name "mismatch\.json"/);
    put('slash.json', manifest('a/b', { bundle: 'steady.js' }), /field "name" is not a valid worker name/);
    put('dotdot.json', manifest('..', { bundle: 'steady.js' }), /field "name" is not a valid worker name/);
    put('nul.json', manifest('slash', { bundle: 'steady.js' }).replace('"slash"', '"a\\u0000b"'), /invalid JSON on line \d+: .*\\u0000|not a valid worker name/);
    put('unicode.json', manifest('h\u00e9llo', { bundle: 'steady.js' }), /field "name" is not a valid worker name/);
    put('escaped.json', manifest('escaped', { bundle: 'steady.js' }).replace('"escaped"', '"h\\u00e9llo"'), /\\u escape for a non-ASCII character/);
    put('h\u00e9llo.json', manifest('h\u00e9llo', { bundle: 'steady.js' }), /file name is not a valid worker name followed by "\.json"/);
    put('a.b.json', manifest('a.b', { bundle: 'steady.js' }), /file name is not a valid worker name followed by "\.json"/);
    put(`${'n'.repeat(64)}.json`, manifest('n'.repeat(64), { bundle: 'steady.js' }), /file name is not a worker name followed by "\.json"/);
    put('9lives.json', manifest('9lives', { bundle: 'steady.js' }), /file name is not a valid worker name/);
    // bundles: only a plain file name in the directory
    outsideMarker = `OUTSIDE-${randomBytes(4).toString('hex')}`;
    const outsideSrc = `module.exports = { default: (() => { throw new Error('${outsideMarker}'); })() };\n`;
    fs.writeFileSync(path.join(cluster.datadir, 'outside.js'), outsideSrc);
    fs.writeFileSync(path.join(cluster.dir, 'outside.js'), outsideSrc);
    put('up.json', manifest('up', { bundle: '../outside.js' }), /field "bundle" must be a plain file name in the worker directory, without "\/"/);
    put('abs.json', manifest('abs', { bundle: path.join(cluster.dir, 'outside.js') }), /field "bundle" must be a plain file name in the worker directory, without "\/"/);
    put('bslash.json', manifest('bslash', { bundle: '..\\outside.js' }), /without "\/"/);
    put('dots.json', manifest('dots', { bundle: '..' }), /must be a plain file name in the worker directory, not "\." or "\.\."/);
    put('ctrl.json', manifest('ctrl', { bundle: 'steady.js\n' }), /field "bundle" must contain only printable ASCII characters/);
    put('nobundle.json', manifest('nobundle'), /cannot open bundle file ".*\/nobundle\.js": No such file or directory/);
    fs.mkdirSync(path.join(dir, 'adir.js'));
    put('adir.json', manifest('adir'), /bundle file ".*\/adir\.js" is not a regular file/);
    // a FIFO: opening it would block the postmaster forever
    expect(spawnSync('mkfifo', [path.join(dir, 'fifo.js')]).status).toBe(0);
    put('fifo.json', manifest('fifo'), /bundle file ".*\/fifo\.js" is not a regular file/);
    // a FIFO as the manifest itself
    expect(spawnSync('mkfifo', [path.join(dir, 'fifoman.json')]).status).toBe(0);
    skipped['fifoman.json'] = /not a regular file/;
    fs.mkdirSync(path.join(dir, 'dirman.json'));
    skipped['dirman.json'] = /not a regular file/;
    if (process.getuid?.() === 0) {
      // unreadable for the server (owned by root, 0600)
      fs.writeFileSync(path.join(dir, 'secret.js'), steadyJs, { mode: 0o600 });
      put('secret.json', manifest('secret'), /cannot open bundle file ".*\/secret\.js": Permission denied/);
      fs.writeFileSync(path.join(dir, 'noread.json'), manifest('noread', { bundle: 'steady.js' }), { mode: 0o600 });
      skipped['noread.json'] = /cannot read file: Permission denied/;
    }
    // ignored without a word: hidden files and other extensions (editors, deploy's temp files)
    writeOwned(cluster, '.hidden.json', manifest('hidden', { bundle: 'steady.js' }));
    writeOwned(cluster, '.steady.json.tmp-1-abcd', manifest('steady'));
    writeOwned(cluster, 'notes.txt', 'not a manifest');

    // --- valid manifests whose worker cannot connect: FATAL, exit 1, restarted at its interval
    put('nodb.json', manifest('nodb', { database: 'nosuchdb', bundle: 'steady.js', restart: 1 }));
    put('norole.json', manifest('norole', { role: 'nosuchrole', bundle: 'steady.js', restart: 1 }));
    put('later.json', manifest('later', { role: 'late_role', bundle: 'steady.js', restart: 1 }));

    // --- hand-written bundles that bypass the CLI's checks: the runtime logs and exits 1
    const bundle = (name: string, code: string | Buffer, re: RegExp, why: string) => {
      put(`${name}.js`, code);
      put(`${name}.json`, manifest(name, { restart: 2 }));
      broken[name] = re;
      brokenWhy[name] = why;
    };
    bundle('throws', `throw new Error('boom at import');\n`, /loading bundle .*\/throws\.js failed: Error: boom at import\n\s+at /, 'boom at import');
    bundle('throws42', `throw 42;\n`, /loading bundle .*\/throws42\.js failed: .*42/, 'non-Error value thrown: 42');
    bundle('syntax', `export default {\n`, /loading bundle .*\/syntax\.js failed: [^]*SyntaxError: Unexpected token 'export'/, "SyntaxError: Unexpected token 'export'");
    bundle('binarybundle', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]), /loading bundle .*\/binarybundle\.js failed: [^]*SyntaxError/, 'SyntaxError');
    bundle('emptybundle', '', /emptybundle: bundle .*\/emptybundle\.js does not export a valid worker.*it has no default export made by defineWorker/, 'no default export made by defineWorker');
    bundle('noexport', `const x = 1;\nexports.other = x;\n`, /noexport: bundle .*\/noexport\.js does not export a valid worker.*it has no default export made by defineWorker/, 'no default export made by defineWorker');
    bundle('plainobject', `module.exports = { default: { name: 'plainobject', async main() {} } };\n`, /plainobject: bundle .* does not export a valid worker.*no default export made by defineWorker/, 'no default export made by defineWorker');
    bundle(
      'notfn',
      `const sdk = require('pg-node-worker');
       const def = { name: 'notfn', main: 42 };
       Object.defineProperty(def, sdk.DEFINITION_BRAND, { value: true });
       module.exports = { default: def };\n`,
      /notfn: bundle .*\/notfn\.js does not export a valid worker.*worker "notfn": main must be a function/,
      'main must be a function',
    );
    bundle(
      'notfn2',
      `const { defineWorker } = require('pg-node-worker');\nmodule.exports = { default: defineWorker({ searchPath: ['public'], name: 'notfn2', main: 'main' }) };\n`,
      /notfn2: loading bundle .*\/notfn2\.js failed: TypeError: worker "notfn2": main must be a function/,
      'main must be a function',
    );
    bundle('missingdep', `require('left-pad');\n`, /missingdep: loading bundle .* failed: Error: Cannot find module 'left-pad'/, "Cannot find module 'left-pad'");
    bundle(
      'badname',
      `const sdk = require('pg-node-worker');
       const def = { name: '../../etc', async main() {} };
       Object.defineProperty(def, sdk.DEFINITION_BRAND, { value: true });
       module.exports = { default: def };\n`,
      /badname: bundle .* does not export a valid worker.*invalid worker name "\.\.\/\.\.\/etc"/,
      'invalid worker name',
    );

    // --- a bundle that is not what deploy wrote (edited in place, partly copied): refused by its sha256
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    put('tampered.js', Buffer.concat([steadyJs, Buffer.from('\n// edited by hand\n')]));
    put('tampered.json', manifest('tampered', { bundle: 'tampered.js', sha256: sha(steadyJs), restart: 2 }));
    put('verified.js', steadyJs);
    put('verified.json', manifest('verified', { bundle: 'verified.js', sha256: sha(steadyJs).toUpperCase(), restart: 2 }));

    await cluster.start();
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it("a bundle that does not match its manifest's sha256 is refused before it runs (XX001, last_error); a matching one runs", async () => {
    const m = await cluster.waitForLog(/\[(\d+)\] ERROR:  node worker "tampered": bundle "[^"]*\/tampered\.js" does not match its manifest\n[^\n]*DETAIL:  The manifest gives SHA-256 ([0-9a-f]{64}); the file's is ([0-9a-f]{64})\./, 15000);
    const pid = Number(m[1]);
    expect(m[2]).not.toBe(m[3]);
    expect(await waitFor('tampered to exit', () => exitOf(cluster.log(), pid), 10000)).toBe('exited with exit code 1');
    expect(cluster.log()).not.toMatch(/tampered: started as pid/);
    await cluster.query('CREATE EXTENSION IF NOT EXISTS pg_node_worker');
    const row = (await view())['tampered'];
    expect(row.last_error).toMatch(/^bundle tampered\.js does not match the sha256 in its manifest \(expected [0-9a-f]{12}\.\.\., found [0-9a-f]{12}\.\.\.\)$/);
    console.log(`[doors] tampered bundle: "${m[0].split('\n')[0].replace(/^.*?ERROR:  /, '')}"; last_error "${row.last_error}"`);
    await cluster.waitForLog(/verified: started as pid \d+/, 15000);
  });

  it('the postmaster logs one line per bad manifest, naming the file and the reason, and registers only the good ones', async () => {
    const log = cluster.log();
    for (const [file, re] of Object.entries(skipped)) {
      const lines = log.split('\n').filter((l) => l.includes(`skipping worker manifest "${dir}/${file}"`));
      expect(lines.length, `${file}: ${lines.join('\n')}`).toBe(1);
      expect(lines[0], file).toMatch(/ LOG:  pg_node_worker: skipping worker manifest /);
      expect(lines[0], file).toMatch(re);
    }
    console.log(`[doors] ${Object.keys(skipped).length} bad manifests, each skipped with one LOG line, e.g. ${log.match(/LOG:  pg_node_worker: skipping worker manifest ".*\/up\.json".*/)?.[0]}`);
    const registered = [...log.matchAll(/pg_node_worker: registered worker "([^"]+)"/g)].map((m) => m[1]).sort();
    expect(registered).toEqual(['steady', 'nodb', 'norole', 'later', 'tampered', 'verified', ...Object.keys(broken)].sort());
    // hidden files and other extensions are not looked at
    expect(log).not.toMatch(/\.hidden\.json|\.tmp-1-abcd|notes\.txt/);
    // the manifests that point outside the directory never ran anything
    expect(log).not.toContain(outsideMarker);
    expect(await cluster.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  });

  /** node_worker.workers rows by name */
  const view = async () => {
    const rows = await cluster.query<{ name: string; state: string; pid: number | null; restarts: number; last_error: string | null }>(
      'SELECT name, state, pid, restarts, last_error FROM node_worker.workers',
    );
    return Object.fromEntries(rows.map((r) => [r.name, r]));
  };

  it('a worker whose database or role does not exist: FATAL at connect, exit 1, restarted with backoff, then failed; fixed and restarted, it runs', async () => {
    const steady = await cluster.waitForWorker('steady');
    await cluster.query('CREATE EXTENSION IF NOT EXISTS pg_node_worker');
    const cases: [string, RegExp][] = [
      ['nodb', /FATAL:  database "nosuchdb" does not exist/],
      ['norole', /FATAL:  role "nosuchrole" does not exist/],
      ['later', /FATAL:  role "late_role" does not exist/],
    ];
    for (const [name, re] of cases) {
      // node_worker.max_failures = 3: three attempts, then 'failed' and no more restarts
      await waitFor(`${name} to be marked failed`, async () => (await view())[name]?.state === 'failed', 30000, 200);
      const log = cluster.log();
      const pids = pidsOf(log, re);
      expect(pids.length, `${name}: attempts`).toBe(3);
      for (const pid of pids) expect(exitOf(log, pid), `${name} pid ${pid}`).toBe('exited with exit code 1');
      const times = pids.map((pid) => logTime(log.match(new RegExp(`^(${TS}) \\S+ \\[${pid}\\] FATAL`, 'm'))![1]));
      expect(log).toMatch(new RegExp(`LOG:  node worker "${name}" failed 2 times in a row; backing off \\d+ s before starting`));
      expect(log).toMatch(new RegExp(`LOG:  node worker "${name}" failed 3 times in a row and is not restarted any more`));
      const row = (await view())[name];
      console.log(
        `[doors] ${name}: "${re.source}" x${pids.length}, attempts ${times.slice(1).map((t, i) => (t - times[i]).toFixed(2)).join(' s, ')} s apart ` +
          `(restart: 1, then backoff), then failed; node_worker.workers.last_error = ${JSON.stringify(row.last_error)}`,
      );
      // restart: 1, then exponential backoff (1 s x 2^(failures - 1))
      expect(times[1] - times[0]).toBeGreaterThanOrEqual(0.9);
      expect(times[2] - times[1]).toBeGreaterThanOrEqual(1.9);
      expect(row.pid).toBeNull();
      // the view says why, and the FATAL names the worker
      expect(row.last_error).toMatch(/^could not connect to database ".*" as role ".*" \(see the server log\)$/);
      expect(log).toMatch(new RegExp(`CONTEXT:  node worker "${name}" connecting to its database`));
    }
    // a role that exists but may not log in: restart() reports the failure
    await cluster.query('CREATE ROLE late_role NOLOGIN');
    let from = cluster.log().length;
    const err = await cluster.query("SELECT node_worker.restart('later')").then(() => null, (e) => e);
    await cluster.waitForLog(/FATAL:  role "late_role" is not permitted to log in/, 10000, from);
    console.log(`[doors] restart('later') with a NOLOGIN role: ${err ? `${err.code} ${err.message} / ${err.detail ?? ''}` : 'no error'}`);
    expect(err, "restart() of a worker that cannot connect fails").not.toBeNull();
    // fixed: restart() starts it, as that role
    await waitFor('later to be failed or backing off again', async () => (await view()).later?.pid === null, 15000, 200);
    await cluster.query('ALTER ROLE late_role LOGIN');
    from = cluster.log().length;
    const [{ pid: later }] = await cluster.query<{ pid: number }>("SELECT node_worker.restart('later') AS pid");
    const started = await cluster.waitForLog(/\[(\d+)\] LOG:  later: started as pid (\d+)/, 10000, from);
    expect(Number(started[1])).toBe(later);
    expect(await cluster.query('SELECT usename FROM pg_stat_activity WHERE pid = $1', [later])).toEqual([{ usename: 'late_role' }]);
    expect((await view()).later.state).toBe('running');
    expect(await cluster.workerPid('steady')).toBe(steady);
    expect(cluster.log()).not.toMatch(RESET);
  });

  it('hand-written bundles that throw at import, export no worker, or whose main is not a function: logged, exit 1, restarted, then failed; no crash', async () => {
    const steady = await cluster.waitForWorker('steady');
    for (const [name, re] of Object.entries(broken)) {
      const m = await cluster.waitForLog(new RegExp(`\\[(\\d+)\\] ERROR:  ${name}: [^\\n]*`), 15000);
      const pid = Number(m[1]);
      const entry = cluster.log().slice(m.index!).split(/\n(?=\d{4}-)/)[0];
      expect(entry, name).toMatch(re);
      const exit = await waitFor(`${name} (${pid}) to exit`, () => exitOf(cluster.log(), pid), 10000);
      expect(exit, name).toBe('exited with exit code 1');
      // and it is started again after its interval (restart: 2): another attempt, same outcome
      const again = await waitFor(`${name} to be attempted again`, () => {
        const pids = pidsOf(cluster.log(), new RegExp(`ERROR:  ${name}: `)).filter((p) => p !== pid);
        return pids.find((p) => exitOf(cluster.log(), p));
      }, 15000);
      expect(exitOf(cluster.log(), again), name).toBe('exited with exit code 1');
      console.log(`[doors] ${name}: ${entry.split('\n')[0].replace(/^.*?ERROR:  /, '').slice(0, 160)}`);
    }
    // the crash loops end: every broken worker is marked failed, with its reason in the view
    await waitFor('every broken worker to be marked failed', async () => {
      const v = await view();
      return Object.keys(broken).every((name) => v[name]?.state === 'failed');
    }, 30000, 250);
    const v = await view();
    for (const name of Object.keys(broken)) expect(v[name].last_error, name).toContain(brokenWhy[name]);
    const log = cluster.log();
    expect(log).not.toMatch(RESET);
    expect(log).not.toMatch(ABORT);
    expect(log).not.toMatch(/exited with exit code (?![01]\b)\d+/);
    expect(log).not.toContain(outsideMarker);
    expect(await cluster.workerPid('steady')).toBe(steady);
    expect(await cluster.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  });

  it('the server stops promptly with all of that going on', async () => {
    const seconds = cluster.stop('fast');
    console.log(`[doors] pg_ctl stop -m fast after all that: ${seconds.toFixed(3)} s`);
    expect(seconds).toBeLessThan(5);
    expect(cluster.log()).not.toMatch(RESET);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a 50 MB bundle', () => {
  let cluster: Cluster;
  let small: Cluster;
  let deploySeconds: number;
  const BLOB_BYTES = 50 * 1024 * 1024;

  beforeAll(async () => {
    cluster = await Cluster.create();
    // 37.5 MiB of random bytes as base64: a 50 MiB string literal, which no minifier shrinks
    const blob = randomBytes((BLOB_BYTES / 4) * 3).toString('base64');
    const src = `import { defineWorker } from 'pg-node-worker';
const BLOB = ${JSON.stringify(blob)};
export default defineWorker({ searchPath: ['public'], name: 'big', restart: 1, async main(ctx) {
  ctx.log.info('big: running with a blob of ' + BLOB.length + ' characters');
  while (!ctx.signal.aborted) await ctx.sleep(60000);
} });\n`;
    const t0 = process.hrtime.bigint();
    cluster.deploy('big', src);
    deploySeconds = seconds(t0);
    // the same bundle in a cluster whose heap limit is smaller than the bundle
    small = await Cluster.create({ settings: { 'node_worker.heap_limit_mb': 64 } });
    small.deploy('steady', idleWorker('steady'));
    for (const f of ['big.js', 'big.json']) writeOwned(small, f, fs.readFileSync(path.join(workerDir(cluster), f)));
  }, 120000);
  afterAll(async () => {
    await cluster?.destroy();
    await small?.destroy();
  });

  it('deploys (under the 64 MiB limit) and the worker starts', async () => {
    const size = fs.statSync(path.join(workerDir(cluster), 'big.js')).size;
    expect(size).toBeGreaterThan(BLOB_BYTES);
    expect(size).toBeLessThan(MAX_BUNDLE_BYTES);
    const t0 = process.hrtime.bigint();
    await cluster.start();
    const m = await cluster.waitForLog(/\[(\d+)\] LOG:  big: big: running with a blob of (\d+) characters/, 30000);
    const started = seconds(t0);
    const pid = Number(m[1]);
    expect(Number(m[2])).toBe(BLOB_BYTES);
    const rss = rssKb(pid)!;
    console.log(
      `[50 MB bundle] ${(size / 1e6).toFixed(1)} MB: deploy ${deploySeconds.toFixed(2)} s; ` +
        `pg_ctl start -> first JS line ${started.toFixed(2)} s; worker RSS ${(rss / 1024).toFixed(0)} MB`,
    );
    expect(await cluster.workerPid('big')).toBe(pid);
    expect(cluster.log()).not.toMatch(RESET);
  });

  it('with node_worker.heap_limit_mb = 64 the worker logs that it ran out of heap and exits 1; the cluster is untouched', async () => {
    await small.start();
    const steady = await small.waitForWorker('steady');
    const m = await small.waitForLog(/\[(\d+)\] LOG:  node worker "big" (reached its JavaScript heap limit \(64 MB\)|ran out of JavaScript heap memory)/, 30000);
    const pid = Number(m[1]);
    const exit = await waitFor('the big worker to exit', () => exitOf(small.log(), pid), 15000);
    console.log(`[50 MB bundle] heap_limit_mb = 64: "${m[0].replace(/^\[\d+\] LOG:  /, '')}" -> ${exit}`);
    expect(exit).toBe('exited with exit code 1');
    expect(small.log()).not.toMatch(RESET);
    expect(small.log()).not.toMatch(ABORT);
    expect(await small.workerPid('steady')).toBe(steady);
  });
});

// ---------------------------------------------------------------------------------------------

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
    cluster.deploy(
      'limited',
      `import { defineWorker } from 'pg-node-worker';
       export default defineWorker({ searchPath: ['public'], name: 'limited', role: 'app', restart: 'never', async main(ctx) {
         const out: Record<string, unknown> = {};
         const attempt = (what: string, fn: () => unknown) => {
           try { out[what] = { ok: fn() }; } catch (e: any) { out[what] = { code: e.code, message: e.message }; }
         };
         attempt('whoami', () => ctx.sql\`SELECT current_user AS u, session_user AS s, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su\`[0]);
         attempt('secret', () => ctx.sql\`SELECT v FROM secret\`);
         attempt('insertSecret', () => ctx.sql\`INSERT INTO secret VALUES ('x')\`);
         attempt('granted', () => { ctx.sql\`INSERT INTO app_log VALUES ('hello')\`; return ctx.sql\`SELECT count(*)::int AS n FROM app_log\`[0].n; });
         attempt('txSecret', () => ctx.transaction((tx) => tx.sql\`SELECT v FROM secret\`));
         attempt('show', () => ctx.sql\`SHOW node_worker.directory\`);
         attempt('pgSettings', () => ctx.sql\`SELECT name FROM pg_settings WHERE name = 'node_worker.directory'\`.length);
         attempt('setRole', () => ctx.sql\`SET ROLE postgres\`);
         attempt('sessionAuth', () => ctx.sql.unsafe('SET SESSION AUTHORIZATION postgres'));
         attempt('copyTo', () => ctx.sql.unsafe("COPY (SELECT 1) TO '/tmp/pgnw-should-not-exist'"));
         attempt('readFile', () => ctx.sql\`SELECT pg_read_file('postgresql.conf')\`);
         attempt('load', () => ctx.sql.unsafe("LOAD 'pg_node_worker_runtime'"));
         attempt('createC', () => ctx.sql.unsafe("CREATE FUNCTION pg_temp.evil() RETURNS void LANGUAGE c AS 'pg_node_worker_runtime', 'pg_node_worker_main'"));
         // ctx.setting is not SQL: the worker's code is the deployer's, it may read any setting
         attempt('setting', () => ctx.setting('node_worker.directory'));
         ctx.log.info('security report ' + JSON.stringify(out));
         while (!ctx.signal.aborted) await ctx.sleep(60000);
       } });`,
    );
    // a bundle that is a symbolic link to a file outside the directory (see the test)
    outsideDir = path.join(cluster.dir, 'outside');
    fs.mkdirSync(outsideDir);
    fs.writeFileSync(
      path.join(outsideDir, 'linked.js'),
      `const { defineWorker } = require('pg-node-worker');
       module.exports = { default: defineWorker({ searchPath: ['public'], name: 'linked', restart: 'never', async main(ctx) { ctx.log.info('linked: running from ' + __filename); } }) };\n`,
    );
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
    expect(r.show.message).toMatch(/must be superuser or have privileges of pg_read_all_settings to examine "node_worker\.directory"/);
    expect(r.pgSettings).toEqual({ ok: 0 });
    // by design: ctx.setting() is the worker's own code, not SQL
    expect(r.setting).toEqual({ ok: 'node_worker' });

    const denied = async (sql: string, codes: string[]) => {
      const res = await queryAs(cluster, 'mallory', sql);
      expect(res.error, sql).toBeDefined();
      expect(codes, `${sql}: ${res.error!.code} ${res.error!.message}`).toContain(res.error!.code);
      return res.error!;
    };
    expect((await denied('SHOW node_worker.directory', ['42501'])).message).toMatch(/must be superuser/);
    await denied("SELECT current_setting('node_worker.directory')", ['42501']);
    await denied("SELECT current_setting('node_worker.directory', true)", ['42501']);
    // every node_worker.* setting that holds a string (a path, today node_worker.directory) is hidden
    // from non-superusers; the numbers are visible; none can be changed in a session
    const mine = await cluster.query<{ name: string; vartype: string; context: string }>(
      "SELECT name, vartype, context FROM pg_settings WHERE name LIKE 'node_worker.%' ORDER BY name",
    );
    expect(mine.map((r) => r.name)).toContain('node_worker.directory');
    const visible = await queryAs(cluster, 'mallory', "SELECT name FROM pg_settings WHERE name LIKE 'node_worker.%' ORDER BY name");
    expect(visible.rows!.map((r) => r.name)).toEqual(mine.filter((r) => r.vartype !== 'string').map((r) => r.name));
    for (const r of mine) {
      expect(['postmaster', 'sighup'], `${r.name} context`).toContain(r.context);
      const set = await queryAs(cluster, 'mallory', `SET ${r.name} = ${r.vartype === 'string' ? "'/tmp'" : '1'}`);
      expect([r.name, set.error?.code]).toEqual([r.name, '55P02']);
    }
    console.log(`[security] node_worker settings: ${mine.map((r) => `${r.name} (${r.vartype}, ${r.context})`).join(', ')}; hidden from mallory: ${mine.filter((r) => r.vartype === 'string').map((r) => r.name).join(', ')}`);
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
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
    if (process.getuid?.() === 0) expect(owner.uid).not.toBe(0);
  });

  it('a non-superuser cannot load the runtime library or a C function, nor write into the worker directory', async () => {
    const dir = workerDir(cluster);
    const before = fs.readdirSync(dir).sort();
    const attempts: [string, RegExp][] = [
      ["LOAD 'pg_node_worker_runtime'", /access to library "pg_node_worker_runtime" is not allowed/],
      ["LOAD '$libdir/pg_node_worker_runtime'", /access to library .* is not allowed/],
      [`LOAD '${path.join(dir, 'limited.js')}'`, /access to library .* is not allowed/],
      ["LOAD 'pg_node_worker'", /access to library "pg_node_worker" is not allowed/],
      ["CREATE FUNCTION pg_temp.evil() RETURNS void LANGUAGE c AS 'pg_node_worker_runtime', 'pg_node_worker_main'", /permission denied for language c/],
      [`COPY (SELECT '{}') TO '${path.join(dir, 'evil.json')}'`, /must be superuser or have privileges of the pg_write_server_files role/],
      [`COPY (SELECT 1) TO PROGRAM 'true'`, /must be superuser or have privileges of the pg_execute_server_program role/],
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
    expect(fs.readdirSync(dir).sort()).toEqual(before);
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
