/**
 * Bad input at every door. The CLI's: worker names, sources and bundles it must refuse before
 * writing anything. The server's: manifests and bundles in node_worker.directory that did not come
 * from the CLI (malformed, pointing outside the directory, not what deploy wrote), and workers
 * whose database or role does not exist. Each is refused with a line that names the file and the
 * reason, never a crash, and the good workers beside them run.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, MAX_BUNDLE_BYTES } from '../src/cli/deploy';
import { CliError } from '../src/cli/errors';
import { cli } from './helpers/cli';
import { Cluster, installedNodeVersion, waitFor } from './helpers/cluster';
import { ABORT, exitOf, logTime, manifest, pidsOf, RESET, TS, workerDir, writeOwned } from './helpers/faults';

describe('bad input at the CLI door', () => {
  // the sources and bundles of this file are malformed or generated on purpose: written from strings
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    await cluster.deployTemplate('idle', 'steady');
  }, 60000);
  afterAll(async () => cluster?.destroy());

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
    const r = cli(['deploy', file, '-D', cluster.datadir]);
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
      const r = cli(['deploy', file, '-D', cluster.datadir]);
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
    await cluster.deployTemplate('idle', 'steady');
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
    put('target_bad.json', manifest('target_bad', { nodeTarget: 'node', bundle: 'steady.js' }), /field "nodeTarget" must look like "node24" or "node24.11"/);
    put('target_num.json', manifest('target_num', { nodeTarget: 24, bundle: 'steady.js' }), /field "nodeTarget" must be a string/);
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
    // Node up to 20 reads it as CommonJS ('export' is the error); 22 and 24 see module syntax and read it as ESM
    bundle('syntax', `export default {\n`, /loading bundle .*\/syntax\.js failed: [^]*SyntaxError: (Unexpected token 'export'|Unexpected end of input)/, 'SyntaxError');
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
    // --- a bundle built for a newer Node than the server embeds (a manifest copied from another server)
    put('newer.js', steadyJs);
    put('newer.json', manifest('newer', { bundle: 'newer.js', nodeTarget: 'node99.1', restart: 2 }));

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

  it('a bundle built for a newer Node than the server embeds is refused before it runs (0A000, last_error names both versions)', async () => {
    const embedded = installedNodeVersion();
    const m = await cluster.waitForLog(/\[(\d+)\] ERROR:  node worker "newer": bundle built for Node 99\.1, newer than this server's Node ([0-9.]+)\n[^\n]*HINT:  Deploy the worker again/, 15000);
    expect(m[2]).toBe(embedded);
    expect(await waitFor('newer to exit', () => exitOf(cluster.log(), Number(m[1])), 10000)).toBe('exited with exit code 1');
    expect(cluster.log()).not.toMatch(/newer: started as pid/);
    await cluster.query('CREATE EXTENSION IF NOT EXISTS pg_node_worker');
    const row = (await view())['newer'];
    expect(row.last_error).toBe(`bundle built for Node 99.1 but this server runs Node ${embedded}; deploy the worker again from this server`);
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
    expect(registered).toEqual(['steady', 'nodb', 'norole', 'later', 'tampered', 'verified', 'newer', ...Object.keys(broken)].sort());
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
