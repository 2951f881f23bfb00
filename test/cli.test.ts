// The pg-node-worker CLI: bundling, definition validation, deploy into a fake data directory.
// No server needed. The bundling and validation tests write their worker sources from strings on
// purpose: each source is the input under test (names and fields the types forbid, module shapes,
// syntax errors, packages in the worker's folder). The others deploy files of test/workers.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorker, evaluateBundle, validateDefinition } from '../src/cli/bundle';
import { deploy, DeployOptions, privilegeWarnings } from '../src/cli/deploy';
import { definitionMetadata } from '../src/define';
import { CliError } from '../src/cli/errors';
import { buildErrorLines, FileTail, WorkerLogFilter } from '../src/cli/dev';
import { run } from '../src/cli/main';
import { formatStatusTable, StatusRow } from '../src/cli/status';
import {
  addPreloadLibrary,
  AUTO_CONF_HEADER,
  formatLibraryList,
  parseConfLine,
  splitLibraryList,
} from '../src/cli/pgconf';
import { fixture, workerDirFiles } from './helpers/workers';

const TARGET = 'node18.20';
const tmpRoots: string[] = [];
function tmpdir(prefix = 'pgnw-cli-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpRoots.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true });
});

function write(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** A worker source in a fresh folder (no node_modules anywhere up the tree of os.tmpdir()). */
function workerFile(body: string, name = 'worker.ts', dir = tmpdir()): string {
  return write(path.join(dir, name), body);
}

const simpleWorker = (fields: string) => `
import { defineWorker } from 'pg-node-worker';
export default defineWorker({ ${fields} async main(ctx: unknown) { return 'ran'; } });
`;

async function bundleError(file: string): Promise<CliError> {
  try {
    await bundleWorker(file, { nodeTarget: TARGET });
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return e as CliError;
  }
  throw new Error(`bundling ${file} did not fail`);
}

/** Load a bundle with a given 'pg-node-worker' module, like the runtime would, and return its default export. */
function load(code: string, sdk: Record<string, unknown>): any {
  const m = { exports: {} as any };
  const fn = new Function('exports', 'require', 'module', code);
  fn(m.exports, (id: string) => (id === 'pg-node-worker' ? sdk : require(id)), m);
  return m.exports.default ?? m.exports;
}

describe('privilege warnings of deploy', () => {
  const meta = (extra: object) => definitionMetadata({ name: 'w', main() {}, ...extra });
  it('warn about a superuser worker, and more about one that resolves names through public', () => {
    expect(privilegeWarnings(meta({}))).toEqual([expect.stringMatching(/runs as the bootstrap superuser/)]);
    expect(privilegeWarnings(meta({ searchPath: ['app', 'public'] }))).toEqual([
      expect.stringMatching(/bootstrap superuser/),
      expect.stringMatching(/with 'public' in its searchPath: whoever can create objects there/),
    ]);
    expect(privilegeWarnings(meta({ role: 'app_worker', searchPath: ['public'] }))).toEqual([]);
  });
});

describe('bundleWorker', () => {
  it('warns about a bundled package whose engines.node excludes the target Node (abbrev of this project)', async () => {
    // abbrev (a dependency of node-gyp here) says ^18.17.0 || >=20.5.0
    const file = fixture('cli-engines.ts');
    const r = await bundleWorker(file, { nodeTarget: 'node18.16' });
    expect(r.warnings.filter((w) => w.startsWith('abbrev@'))).toHaveLength(1);
    const ok = await bundleWorker(file, { nodeTarget: 'node18.20.4' });
    expect(ok.warnings.filter((w) => w.startsWith('abbrev@'))).toEqual([]);
  });

  beforeAll(() => {
    // the premise of "no node_modules": nothing above os.tmpdir() provides packages
    for (let d = os.tmpdir(); ; d = path.dirname(d)) {
      expect(fs.existsSync(path.join(d, 'node_modules', 'pg-node-worker'))).toBe(false);
      if (path.dirname(d) === d) break;
    }
  });

  it('bundles a worker from a folder without node_modules, keeping pg-node-worker external', async () => {
    const file = workerFile(simpleWorker(`name: 'counter',`), 'counter.ts');
    expect(fs.existsSync(path.join(path.dirname(file), 'node_modules'))).toBe(false);
    const { code, definition } = await bundleWorker(file, { nodeTarget: TARGET });
    expect(definition).toEqual({
      name: 'counter',
      database: 'postgres',
      role: null,
      restart: 10,
      start: 'recovery-finished',
      callers: null,
      searchPath: null,
      heapLimitMb: null,
      bufferLimitMb: null,
      youngGenerationMb: null,
      autostart: true,
      instances: 1,
    });
    expect(code).toContain('require("pg-node-worker")');
    expect(code).toMatch(/\/\/# sourceMappingURL=data:application\/json;base64,/);
    const map = JSON.parse(
      Buffer.from(/sourceMappingURL=data:application\/json;base64,(\S+)/.exec(code)![1], 'base64').toString(),
    );
    expect(map.sourceRoot + map.sources[0]).toBe(new URL('file://' + file).href);
    // the bundle runs against the real runtime's module
    let seen: any;
    const def = load(code, { defineWorker: (d: any) => (seen = d) });
    expect(def).toBe(seen);
    expect(await def.main({})).toBe('ran');
  });

  it('reads every field and ignores unknown ones', async () => {
    const file = workerFile(
      simpleWorker(
        `name: 'w_2-x', database: 'app', role: 'worker_role', restart: 'never', start: 'postmaster', searchPath: ['app', 'Ext'], instances: 2, color: 'blue',`,
      ),
    );
    const { definition } = await bundleWorker(file, { nodeTarget: TARGET });
    expect(definition).toEqual({
      name: 'w_2-x',
      database: 'app',
      role: 'worker_role',
      restart: 'never',
      start: 'postmaster',
      callers: null,
      searchPath: ['app', 'Ext'],
      heapLimitMb: null,
      bufferLimitMb: null,
      youngGenerationMb: null,
      autostart: true,
      instances: 2,
    });
  });

  it('bundles an npm package from the worker folder', async () => {
    const dir = tmpdir();
    write(path.join(dir, 'node_modules', 'foo', 'package.json'), JSON.stringify({ name: 'foo', version: '1.0.0', main: 'index.js' }));
    write(path.join(dir, 'node_modules', 'foo', 'index.js'), `exports.answer = function () { return 'FOO_MARKER_' + 42; };\n`);
    const file = workerFile(
      `import { defineWorker } from 'pg-node-worker';
import { answer } from 'foo';
export default defineWorker({ name: 'uses_foo', main: () => answer() });
`,
      'w.ts',
      dir,
    );
    const { code, definition } = await bundleWorker(file, { nodeTarget: TARGET });
    expect(definition.name).toBe('uses_foo');
    expect(code).toContain('FOO_MARKER_');
    expect(code).not.toContain('require("foo")');
    // the bundle does not need the folder
    const def = load(code, { defineWorker: (d: any) => d });
    expect(def.main()).toBe('FOO_MARKER_42');
  });

  it('lists the local files it bundled (not node_modules) for dev mode to watch', async () => {
    const dir = tmpdir();
    write(path.join(dir, 'node_modules', 'bar', 'index.js'), `exports.bar = 1;\n`);
    write(path.join(dir, 'lib', 'util.ts'), `export const twice = (n: number) => 2 * n;\n`);
    write(path.join(dir, 'unused.ts'), `export const nope = 1;\n`);
    const file = workerFile(
      `import { defineWorker } from 'pg-node-worker';
import { twice } from './lib/util';
import { bar } from 'bar';
export default defineWorker({ name: 'w', main: () => twice(bar) });
`,
      'w.ts',
      dir,
    );
    const { inputs } = await bundleWorker(file, { nodeTarget: TARGET });
    expect(inputs).toEqual([path.join(dir, 'lib', 'util.ts'), file].sort());
  });

  it('honours the Node target', async () => {
    const file = workerFile(simpleWorker(`name: 'x', ...{ a: 1 },`) + `\nexport const y = (globalThis as any).q ?? 1;\n`);
    const old = await bundleWorker(file, { nodeTarget: 'node12' });
    const cur = await bundleWorker(file, { nodeTarget: TARGET });
    expect(cur.code).toContain('??');
    expect(old.code).not.toContain('??');
    await expect(bundleWorker(file, { nodeTarget: 'chrome99' })).rejects.toThrow(/invalid Node target/);
  });

  it('reports syntax errors as file:line:col', async () => {
    const file = workerFile(`import { defineWorker } from 'pg-node-worker';\n\nexport default defineWorker({ name: 'x' main() {} });\n`, 'bad.ts');
    const e = await bundleError(file);
    expect(e.message).toMatch(/bad\.ts:3:\d+: Expected "}" but found "main"/);
  });

  it('reports unresolvable imports with their location', async () => {
    const file = workerFile(`import { defineWorker } from 'pg-node-worker';\nimport nope from 'no-such-package-xyz';\nexport default defineWorker({ name: 'x', main() { nope(); } });\n`);
    const e = await bundleError(file);
    expect(e.message).toMatch(/worker\.ts:2:18: Could not resolve "no-such-package-xyz"/);
  });

  it('refuses a module without a default export', async () => {
    const e = await bundleError(workerFile(`export const main = () => {};\n`, 'nodefault.ts'));
    expect(e.message).toMatch(/nodefault\.ts does not export a worker: export default defineWorker\(\{\.\.\.\}\)/);
  });

  it('refuses a default export that did not go through defineWorker', async () => {
    const e = await bundleError(workerFile(`export default { name: 'x', main() {} };\n`));
    expect(e.message).toMatch(/does not export a worker/);
  });

  it('accepts module.exports = defineWorker(...) too', async () => {
    const file = workerFile(`const { defineWorker } = require('pg-node-worker');\nmodule.exports = defineWorker({ name: 'cjs', main() {} });\n`, 'w.js');
    expect((await bundleWorker(file, { nodeTarget: TARGET })).definition.name).toBe('cjs');
  });

  it.each([['a/b'], ['..'], ['../x'], ['héllo'], [''], ['1abc'], ['a b'], ['a\0b'], ['x'.repeat(64)], ['a.b']])(
    'refuses the name %j',
    async (name) => {
      const e = await bundleError(workerFile(simpleWorker(`name: ${JSON.stringify(name)},`)));
      expect(e.message).toMatch(/invalid worker name/);
      expect(e.message).toMatch(/1 to 63 ASCII characters/);
    },
  );

  it.each([
    ['heapLimitMb: 8', /heapLimitMb must be an integer from 16 to 65536 \(got 8\)/],
    ['heapLimitMb: 100000', /heapLimitMb must be an integer from 16 to 65536/],
    ["heapLimitMb: '64'", /heapLimitMb must be an integer from 16 to 65536/],
    ['bufferLimitMb: 1.5', /bufferLimitMb must be an integer from 16 to 1048576 \(got 1\.5\)/],
    ['bufferLimitMb: -1', /bufferLimitMb must be an integer from 16 to 1048576/],
    ['bufferLimitMb: 2000000', /bufferLimitMb must be an integer from 16 to 1048576/],
  ])('refuses %s', async (field, re) => {
    const e = await bundleError(workerFile(simpleWorker(`name: 'w', ${field},`)));
    expect(e.message).toMatch(re);
  });

  it('writes heapLimitMb, bufferLimitMb and youngGenerationMb into the definition', async () => {
    const { definition } = await bundleWorker(workerFile(simpleWorker(`name: 'w', heapLimitMb: 64, bufferLimitMb: 2048, youngGenerationMb: 8,`)), { nodeTarget: TARGET });
    expect(definition).toMatchObject({ heapLimitMb: 64, bufferLimitMb: 2048, youngGenerationMb: 8 });
  });

  it('accepts the longest valid name', async () => {
    const name = '_' + 'a-'.repeat(31); // 63 characters
    const { definition } = await bundleWorker(workerFile(simpleWorker(`name: '${name}',`)), { nodeTarget: TARGET });
    expect(definition.name).toBe(name);
  });

  it.each([
    [`name: 'x', restart: 1.5,`, /restart must be an integer/],
    [`name: 'x', restart: -1,`, /restart must be an integer/],
    [`name: 'x', restart: 86401,`, /restart must be an integer/],
    [`name: 'x', restart: 'always',`, /restart must be an integer.*'never'/],
    [`name: 'x', start: 'later',`, /start must be one of 'postmaster', 'consistent', 'recovery-finished'/],
    [`name: 'x', database: '',`, /database must be a non-empty string/],
    [`name: 'x', database: 5,`, /database must be a non-empty string/],
    [`name: 'x', role: null as any,`, /role must be a non-empty string/],
    [`name: 'x', role: '',`, /role must be a non-empty string/],
    [`name: 'x', role: '${'r'.repeat(64)}',`, /role .* longer than 63 bytes/],
    [`name: 'x', database: '${'é'.repeat(32)}',`, /database .* longer than 63 bytes/],
    [`restart: 5,`, /needs a name/],
  ])('refuses the definition { %s }', async (fields, re) => {
    const e = await bundleError(workerFile(simpleWorker(fields)));
    expect(e.message).toMatch(re);
  });

  it('accepts restart 0 and 86400', async () => {
    for (const r of [0, 86400]) {
      const { definition } = await bundleWorker(workerFile(simpleWorker(`name: 'x', restart: ${r},`)), { nodeTarget: TARGET });
      expect(definition.restart).toBe(r);
    }
  });

  it('refuses a main that is not a function', async () => {
    const file = workerFile(`import { defineWorker } from 'pg-node-worker';\nexport default defineWorker({ name: 'x', main: 42 } as any);\n`);
    expect((await bundleError(file)).message).toMatch(/worker "x": main must be a function/);
  });

  it('reports what the module throws at import', async () => {
    const file = workerFile(`import { defineWorker } from 'pg-node-worker';\nthrow new Error('boom at import');\nexport default defineWorker({ name: 'x', main() {} });\n`);
    expect((await bundleError(file)).message).toMatch(/threw: boom at import/);
  });

  it('gives the module harmless SDK placeholders and real node built-ins at deploy time', async () => {
    const file = workerFile(`import { defineWorker, PgError, somethingElse } from 'pg-node-worker';
import * as os from 'node:os';
import * as path from 'path';
class MyError extends PgError {}
class Other extends (somethingElse as any) {}
new Other();
const host = os.hostname() + path.sep;
export default defineWorker({ name: 'x', main() { throw new MyError(host); } });
`);
    const { definition } = await bundleWorker(file, { nodeTarget: TARGET });
    expect(definition.name).toBe('x');
  });


  it('refuses a missing file', async () => {
    await expect(bundleWorker(path.join(tmpdir(), 'missing.ts'), { nodeTarget: TARGET })).rejects.toThrow(/no such file/);
  });

  it('validateDefinition takes module.exports.default ?? module.exports', () => {
    const b = Symbol.for('pg-node-worker.definition');
    const def = Object.defineProperty({ name: 'n', main() {} }, b, { value: true });
    expect(validateDefinition({ default: def }, 'f').name).toBe('n');
    expect(validateDefinition(def, 'f').name).toBe('n');
    expect(() => validateDefinition({ default: { name: 'n', main() {} } }, 'f')).toThrow(/does not export a worker/);
    expect(() => validateDefinition(undefined, 'f')).toThrow(/does not export a worker/);
    expect(() => evaluateBundle('require("left-pad")', '/tmp/x.js')).toThrow(/Cannot find module 'left-pad'/);
  });
});

describe('configuration files', () => {
  it('parses lines like guc-file.l', () => {
    expect(parseConfLine(`shared_preload_libraries = 'a, b'   # comment`)).toEqual({ kind: 'assign', name: 'shared_preload_libraries', value: 'a, b' });
    expect(parseConfLine(`  Shared_Preload_Libraries='it''s'`)).toEqual({ kind: 'assign', name: 'shared_preload_libraries', value: "it's" });
    expect(parseConfLine(`x = 'a\\'b\\\\c\\n'`)).toEqual({ kind: 'assign', name: 'x', value: "a'b\\c\n" });
    expect(parseConfLine(`node_worker.directory '/srv/w'`)).toEqual({ kind: 'assign', name: 'node_worker.directory', value: '/srv/w' });
    expect(parseConfLine(`work_mem = 64MB`)).toEqual({ kind: 'assign', name: 'work_mem', value: '64MB' });
    expect(parseConfLine(`#shared_preload_libraries = 'x'`)).toEqual({ kind: 'blank' });
    expect(parseConfLine(`   `)).toEqual({ kind: 'blank' });
    expect(parseConfLine(`x = 'unterminated`)).toEqual({ kind: 'invalid' });
  });

  it('splits and joins library lists like SplitDirectoriesString', () => {
    expect(splitLibraryList('')).toEqual([]);
    expect(splitLibraryList('  ')).toEqual([]);
    expect(splitLibraryList('a')).toEqual(['a']);
    expect(splitLibraryList(' a ,b,  $libdir/c d ')).toEqual(['a', 'b', '$libdir/c d']);
    expect(splitLibraryList('"x,y", "q""uote" , z')).toEqual(['x,y', 'q"uote', 'z']);
    expect(splitLibraryList('a,,b')).toBeNull();
    expect(splitLibraryList('"a')).toBeNull();
    expect(splitLibraryList('"a" b')).toBeNull();
    const items = ['x,y', 'q"uote', 'plain', '$libdir/p', 'with space'];
    expect(splitLibraryList(formatLibraryList(items))).toEqual(items);
  });

  it('adds the library to auto.conf as ALTER SYSTEM would', () => {
    const conf = [{ name: 'shared_preload_libraries', value: 'pg_stat_statements', file: 'postgresql.conf', line: 1 }];
    // no auto.conf: header + line, value from postgresql.conf
    const a = addPreloadLibrary(null, 'auto', conf, 'pg_node_worker');
    expect(a.text).toBe(AUTO_CONF_HEADER + `shared_preload_libraries = 'pg_stat_statements, pg_node_worker'\n`);
    // auto.conf sets it: only its list counts; duplicates collapse onto the last one, other lines stay
    const text = AUTO_CONF_HEADER + `shared_preload_libraries = 'x'\nwork_mem = '8MB'\nshared_preload_libraries = '"it''s", auto_explain'\nfoo.bar = 'z'\n`;
    const b = addPreloadLibrary(text, 'auto', conf, 'pg_node_worker');
    expect(b.text).toBe(AUTO_CONF_HEADER + `work_mem = '8MB'\nshared_preload_libraries = 'it''s, auto_explain, pg_node_worker'\nfoo.bar = 'z'\n`);
    // already there (in any spelling): nothing to write
    expect(addPreloadLibrary(`shared_preload_libraries = '"$libdir/pg_node_worker.so"'\n`, 'auto', [], 'pg_node_worker').text).toBeNull();
    expect(addPreloadLibrary(null, 'auto', [{ ...conf[0], value: 'pg_node_worker' }], 'pg_node_worker').text).toBeNull();
    // nothing anywhere
    expect(addPreloadLibrary(AUTO_CONF_HEADER, 'auto', [], 'pg_node_worker').text).toBe(
      AUTO_CONF_HEADER + `shared_preload_libraries = 'pg_node_worker'\n`,
    );
    // an element needing quotes, and a value needing conf escaping
    expect(addPreloadLibrary(null, 'auto', [{ ...conf[0], value: `"a,b", c\\d` }], 'pg_node_worker').text).toContain(
      `shared_preload_libraries = '"a,b", c\\\\d, pg_node_worker'`,
    );
    expect(() => addPreloadLibrary(`shared_preload_libraries = 'a,,b'\n`, 'auto', [], 'pg_node_worker')).toThrow(/cannot parse/);
  });
});

describe('deploy', () => {
  let pkglib: string;
  let fakePgConfig: string;
  const NOW = new Date('2026-11-27T10:00:00.000Z');

  beforeAll(() => {
    const d = tmpdir('pgnw-pkglib-');
    pkglib = path.join(d, 'lib');
    write(path.join(pkglib, 'pg_node_worker', 'node-version'), '18.20.4\n');
    fakePgConfig = write(
      path.join(d, 'pg_config'),
      `#!/bin/sh\nfor a; do case "$a" in --pkglibdir) echo "${pkglib}";; --version) echo "PostgreSQL 15.4";; --bindir) echo /nonexistent;; esac; done\n`,
    );
    fs.chmodSync(fakePgConfig, 0o755);
  });

  function fakePgdata(opts: { conf?: string; auto?: string | null } = {}): string {
    const d = path.join(tmpdir('pgnw-pgdata-'), 'data');
    fs.mkdirSync(d, { mode: 0o700 });
    write(path.join(d, 'PG_VERSION'), '15\n');
    write(path.join(d, 'postgresql.conf'), opts.conf ?? `# main config\nshared_preload_libraries = 'pg_stat_statements'\t# (change requires restart)\n`);
    const auto = opts.auto === undefined ? AUTO_CONF_HEADER + `work_mem = '8MB'\n` : opts.auto;
    if (auto !== null) {
      write(path.join(d, 'postgresql.auto.conf'), auto);
      fs.chmodSync(path.join(d, 'postgresql.auto.conf'), 0o600);
    }
    return d;
  }

  function collect() {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, log: (l: string) => void out.push(l), warn: (l: string) => void err.push(l) };
  }

  async function doDeploy(file: string, o: Partial<DeployOptions> & { pgdata: string }) {
    const io = collect();
    const r = await deploy(file, { pgConfig: fakePgConfig, now: NOW, log: io.log, warn: io.warn, ...o });
    return { r, ...io };
  }

  const mode = (p: string) => fs.statSync(p).mode & 0o7777;

  it('writes autostart and instances only when they are not the defaults, and says how an on-demand worker runs', async () => {
    const pgdata = fakePgdata();
    const { r, out } = await doDeploy(fixture('control-ondemand.ts'), { pgdata, restart: true });
    expect(r.manifest).toMatchObject({ name: 'ondemand', autostart: false });
    expect(r.manifest).not.toHaveProperty('instances');
    expect(r.restartedPid).toBeUndefined();
    expect(out[out.length - 1]).toBe(`autostart is false: the worker runs when launched (SELECT node_worker.launch('ondemand', args))`);
    const many = await doDeploy(fixture('instances-many.ts'), { pgdata });
    expect(many.r.manifest).toMatchObject({ name: 'many', instances: 3 });
    expect(many.r.manifest).not.toHaveProperty('autostart');
  });

  it('writes bundle and manifest, and adds pg_node_worker to shared_preload_libraries once', async () => {
    const pgdata = fakePgdata();
    const file = fixture('cli-counter.ts');
    const { r, out, err } = await doDeploy(file, { pgdata });
    expect(err).toEqual([expect.stringMatching(/^warning: worker "counter" runs as the bootstrap superuser/)]);

    const dir = path.join(pgdata, 'node_worker');
    expect(r.directory).toBe(dir);
    expect(mode(dir)).toBe(0o750);
    const js = path.join(dir, 'counter.js');
    const json = path.join(dir, 'counter.json');
    expect(mode(js)).toBe(0o640);
    expect(mode(json)).toBe(0o640);
    expect(workerDirFiles(dir)).toEqual(['counter.js', 'counter.json']); // no temp files left

    const code = fs.readFileSync(js, 'utf8');
    expect(code).toContain('require("pg-node-worker")');
    const manifestText = fs.readFileSync(json, 'utf8');
    const manifest = JSON.parse(manifestText);
    expect(Object.keys(manifest)).toEqual(['format', 'name', 'database', 'role', 'restart', 'start', 'bundle', 'sha256', 'deployedAt', 'nodeTarget']);
    expect(manifest).toEqual({
      format: 1,
      name: 'counter',
      database: 'postgres',
      role: null,
      restart: 5,
      start: 'recovery-finished',
      bundle: 'counter.js',
      sha256: createHash('sha256').update(fs.readFileSync(js)).digest('hex'),
      deployedAt: '2026-11-27T10:00:00.000Z',
      nodeTarget: 'node18.20.4',
    });
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);

    const autoFile = path.join(pgdata, 'postgresql.auto.conf');
    const auto = fs.readFileSync(autoFile, 'utf8');
    expect(auto).toBe(AUTO_CONF_HEADER + `work_mem = '8MB'\nshared_preload_libraries = 'pg_stat_statements, pg_node_worker'\n`);
    expect(mode(autoFile)).toBe(0o600);
    expect(fs.readdirSync(pgdata).filter((f) => f.includes('tmp'))).toEqual([]);

    expect(out[0]).toMatch(new RegExp(`^deployed worker "counter" to ${dir} \\(bundle \\d+(\\.\\d)? k?B, sha256 ${manifest.sha256.slice(0, 12)}…\\)$`));
    expect(out).toContain(`shared_preload_libraries now includes pg_node_worker (${path.relative(process.cwd(), autoFile).startsWith('..') ? autoFile : path.relative(process.cwd(), autoFile)}: 'pg_stat_statements, pg_node_worker')`);
    expect(out[out.length - 1]).toMatch(new RegExp(`^next: pg_ctl start -D ${pgdata}  \\(.*the worker starts when the server starts\\)$`));

    // again, with the server "running" (a live pid: ours): idempotent
    write(path.join(pgdata, 'postmaster.pid'), `${process.pid}\n${pgdata}\n0\n5432\n/tmp\n`);
    const again = await doDeploy(file, { pgdata, now: new Date('2026-11-28T00:00:00.000Z') });
    expect(fs.readFileSync(autoFile, 'utf8')).toBe(auto);
    expect(again.r.preload.changed).toBe(false);
    expect(again.r.replaced).toBe(true);
    expect(again.out[0]).toMatch(/^updated worker "counter"/);
    expect(again.out).toContain('shared_preload_libraries already includes pg_node_worker');
    expect(again.out[again.out.length - 1]).toBe(
      "next: the new code runs on the next restart of the worker (SELECT node_worker.restart('counter'), or deploy --restart) or of the server",
    );
    const m2 = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(m2.sha256).toBe(manifest.sha256);
    expect(m2.deployedAt).toBe('2026-11-28T00:00:00.000Z');
    expect(workerDirFiles(dir)).toEqual(['counter.js', 'counter.json']);
  });

  it('extends the list that postgresql.auto.conf already sets', async () => {
    const pgdata = fakePgdata({ auto: AUTO_CONF_HEADER + `shared_preload_libraries = 'auto_explain'\nwork_mem = '8MB'\n` });
    await doDeploy(fixture('cli-w.ts'), { pgdata });
    expect(fs.readFileSync(path.join(pgdata, 'postgresql.auto.conf'), 'utf8')).toBe(
      AUTO_CONF_HEADER + `shared_preload_libraries = 'auto_explain, pg_node_worker'\nwork_mem = '8MB'\n`,
    );
  });

  it('creates postgresql.auto.conf when missing, and leaves postgresql.conf alone', async () => {
    const conf = `shared_preload_libraries = 'a'\nshared_preload_libraries = 'b,c'  # the last one wins\n#shared_preload_libraries = 'commented'\n`;
    const pgdata = fakePgdata({ auto: null, conf });
    await doDeploy(fixture('cli-w.ts'), { pgdata });
    const autoFile = path.join(pgdata, 'postgresql.auto.conf');
    expect(fs.readFileSync(autoFile, 'utf8')).toBe(AUTO_CONF_HEADER + `shared_preload_libraries = 'b, c, pg_node_worker'\n`);
    expect(mode(autoFile)).toBe(0o600);
    expect(fs.readFileSync(path.join(pgdata, 'postgresql.conf'), 'utf8')).toBe(conf);
  });

  it('leaves auto.conf alone when postgresql.conf already preloads pg_node_worker', async () => {
    const pgdata = fakePgdata({ conf: `shared_preload_libraries = 'pg_node_worker'\n` });
    const before = fs.readFileSync(path.join(pgdata, 'postgresql.auto.conf'), 'utf8');
    const { r } = await doDeploy(fixture('cli-w.ts'), { pgdata });
    expect(r.preload.changed).toBe(false);
    expect(fs.readFileSync(path.join(pgdata, 'postgresql.auto.conf'), 'utf8')).toBe(before);
  });

  it('follows include files and uses the server config named in postmaster.opts', async () => {
    const etc = tmpdir('pgnw-etc-');
    write(path.join(etc, 'conf.d', '10-libs.conf'), `shared_preload_libraries = 'from_conf_d'\n`);
    const mainConf = write(path.join(etc, 'postgresql.conf'), `include_dir 'conf.d'\nnode_worker.directory = 'workers'\n`);
    const pgdata = fakePgdata({ conf: `shared_preload_libraries = 'not_this_one'\n` });
    write(path.join(pgdata, 'postmaster.opts'), `/usr/lib/postgresql/15/bin/postgres "-D" "${pgdata}" "-c" "config_file=${mainConf}"\n`);
    const { r } = await doDeploy(fixture('cli-w.ts'), { pgdata });
    expect(r.directory).toBe(path.join(pgdata, 'workers'));
    expect(r.preload.value).toBe('from_conf_d, pg_node_worker');
  });

  it('finds node_worker.directory in the configuration (auto.conf wins), or takes --directory', async () => {
    const pgdata = fakePgdata({
      conf: `node_worker.directory = 'from_conf'\n`,
      auto: AUTO_CONF_HEADER + `node_worker.directory = 'from_auto'\n`,
    });
    const file = fixture('cli-w.ts');
    const a = await doDeploy(file, { pgdata });
    expect(a.r.directory).toBe(path.join(pgdata, 'from_auto'));
    expect(fs.existsSync(path.join(pgdata, 'from_auto', 'w.json'))).toBe(true);

    const absolute = path.join(tmpdir(), 'x');
    const pgdata2 = fakePgdata({ conf: `node_worker.directory = '${absolute}'\n` });
    const b = await doDeploy(file, { pgdata: pgdata2 });
    expect(b.r.directory).toBe(absolute);
    expect(fs.existsSync(path.join(absolute, 'w.json'))).toBe(true);

    const explicit = path.join(tmpdir(), 'a', 'b');
    const c = await doDeploy(file, { pgdata, directory: explicit });
    expect(c.r.directory).toBe(explicit);
    expect(mode(explicit)).toBe(0o750);
    expect(mode(path.dirname(explicit))).toBe(0o750);
    expect(workerDirFiles(explicit)).toEqual(['w.js', 'w.json']);
  });

  it('falls back to node18 with a warning when the extension is not installed', async () => {
    const pgdata = fakePgdata();
    const { r, err } = await doDeploy(fixture('cli-w.ts'), { pgdata, pgConfig: path.join(tmpdir(), 'no-pg-config') });
    expect(r.manifest.nodeTarget).toBe('node18');
    expect(err.join('\n')).toMatch(/^warning: cannot run .*no-pg-config.*bundling for node18/);

    const lib = tmpdir();
    const pgc = write(path.join(lib, 'pg_config'), `#!/bin/sh\necho ${lib}\necho PostgreSQL 16.1\n`);
    fs.chmodSync(pgc, 0o755);
    const second = await doDeploy(fixture('cli-w.ts'), { pgdata, pgConfig: pgc });
    expect(second.r.manifest.nodeTarget).toBe('node18');
    expect(second.err.join('\n')).toMatch(/pg_node_worker is not installed/);
    expect(second.err.join('\n')).toMatch(/PostgreSQL 15 data directory but .* is PostgreSQL 16/);
  });

  it('refuses a missing data directory, a directory without PG_VERSION, a missing file', async () => {
    const file = fixture('cli-w.ts');
    const missing = path.join(tmpdir(), 'nope');
    await expect(doDeploy(file, { pgdata: missing })).rejects.toThrow(/data directory .*nope does not exist/);
    const notData = tmpdir();
    await expect(doDeploy(file, { pgdata: notData })).rejects.toThrow(/not a PostgreSQL data directory \(no PG_VERSION file\)/);
    await expect(doDeploy(path.join(notData, 'missing.ts'), { pgdata: fakePgdata() })).rejects.toThrow(/missing\.ts: no such file/);
    await expect(doDeploy(file, { pgdata: fakePgdata() })).resolves.toBeTruthy();
  });

  it('writes nothing when the worker is invalid', async () => {
    const pgdata = fakePgdata();
    const before = fs.readFileSync(path.join(pgdata, 'postgresql.auto.conf'), 'utf8');
    await expect(doDeploy(workerFile(simpleWorker(`name: 'a/b',`)), { pgdata })).rejects.toBeInstanceOf(CliError);
    expect(fs.existsSync(path.join(pgdata, 'node_worker'))).toBe(false);
    expect(fs.readFileSync(path.join(pgdata, 'postgresql.auto.conf'), 'utf8')).toBe(before);
  });

  it.runIf(process.getuid?.() === 0)('as root, gives the files to the data directory owner', async () => {
    const pgdata = fakePgdata();
    const uid = 54321;
    const gid = 54322;
    fs.chownSync(pgdata, uid, gid);
    // auto.conf keeps its own owner
    fs.chownSync(path.join(pgdata, 'postgresql.auto.conf'), 1234, 1235);
    const { r } = await doDeploy(fixture('cli-w.ts'), { pgdata });
    for (const p of [r.directory, r.bundlePath, r.manifestPath]) {
      const st = fs.statSync(p);
      expect([p, st.uid, st.gid]).toEqual([p, uid, gid]);
    }
    const auto = fs.statSync(path.join(pgdata, 'postgresql.auto.conf'));
    expect([auto.uid, auto.gid]).toEqual([1234, 1235]);
  });

  describe('--restart', () => {
    /** postmaster.pid as the server writes it (pidfile.h): pid, datadir, start, port, socket dir, listen, shmem key, status */
    const pidFile = (pgdata: string, pid: number, socketDir: string, port = 5432) =>
      write(path.join(pgdata, 'postmaster.pid'), `${pid}\n${pgdata}\n1700000000\n${port}\n${socketDir}\n\n  1234  5678\nready   \n`);
    const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;
    const preloaded = { conf: `shared_preload_libraries = 'pg_node_worker'\n` };

    it('a stale postmaster.pid: the server is not running, nothing is restarted', async () => {
      const pgdata = fakePgdata(preloaded);
      const pid = deadPid();
      pidFile(pgdata, pid, '/tmp');
      const { r, out } = await doDeploy(fixture('cli-w.ts'), { pgdata, restart: true });
      expect(r.serverRunning).toBe(false);
      expect(r.restartedPid).toBeUndefined();
      expect(out[out.length - 1]).toMatch(
        new RegExp(`^the server is not running \\(postmaster.pid names pid ${pid}, which is not running\\): no restart attempted; the new code runs at the next start: pg_ctl start -D ${pgdata} `),
      );
    });

    it('a running server that has not loaded pg_node_worker: deployed, told to restart the server, no connection', async () => {
      const pgdata = fakePgdata(); // preload added by this deploy
      pidFile(pgdata, process.pid, '/nonexistent-socket-dir');
      const file = fixture('cli-w.ts');
      await expect(doDeploy(file, { pgdata, restart: true })).rejects.toThrow(
        /worker "w" is deployed, but the running server \(pid \d+\) has not loaded pg_node_worker .*The server was not restarted: restart it to start the worker: pg_ctl restart -D /s,
      );
      expect(workerDirFiles(path.join(pgdata, 'node_worker'))).toEqual(['w.js', 'w.json']);
    });

    it('a server without a unix socket: says so', async () => {
      const pgdata = fakePgdata(preloaded);
      pidFile(pgdata, process.pid, '');
      await expect(doDeploy(fixture('cli-w.ts'), { pgdata, restart: true })).rejects.toThrow(
        /listens on no unix socket \(the socket directory line of postmaster.pid is empty/,
      );
    });

    it('runs psql from pg_config --bindir over the socket of postmaster.pid, as the data directory owner', async () => {
      // a psql that records how it was run and answers like the real one
      const d = tmpdir('pgnw-fakebin-');
      fs.chmodSync(d, 0o777);
      const record = path.join(d, 'record');
      write(
        path.join(d, 'bin', 'psql'),
        `#!/bin/sh\n{ id -u; echo "$HOME"; for a; do echo "$a"; done; echo ---; cat; } > ${record}\necho pid=4242\n`,
      );
      fs.chmodSync(path.join(d, 'bin', 'psql'), 0o755);
      fs.chmodSync(path.join(d, 'bin'), 0o755);
      const pgc = write(path.join(d, 'pg_config'), `#!/bin/sh\necho ${path.join(d, 'bin')}\n`);
      fs.chmodSync(pgc, 0o755);

      const pgdata = fakePgdata(preloaded);
      let owner = { uid: process.getuid!(), name: os.userInfo().username, home: os.homedir() };
      if (process.getuid?.() === 0) {
        const pw = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === 'postgres')!;
        owner = { uid: Number(pw[2]), name: 'postgres', home: pw[5] };
        fs.chownSync(pgdata, Number(pw[2]), Number(pw[3]));
      }
      pidFile(pgdata, process.pid, '/run/some socket dir', 5433);
      const { r, out } = await doDeploy(fixture('cli-w.ts'), { pgdata, restart: true, pgConfig: pgc, nodeTarget: TARGET });
      expect(r.restartedPid).toBe(4242);
      expect(out[out.length - 1]).toBe('restarted worker "w" with the new code: pid 4242 (the server kept running)');

      const [uid, home, ...rest] = fs.readFileSync(record, 'utf8').split('\n');
      expect(Number(uid)).toBe(owner.uid);
      if (process.getuid?.() === 0) expect(home).toBe(owner.home);
      const sep = rest.indexOf('---');
      const args = rest.slice(0, sep);
      const script = rest.slice(sep + 1).join('\n');
      const user = process.env.PGUSER || owner.name;
      expect(args).toEqual([
        '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-v', 'pgnw_name=w',
        '-h', '/run/some socket dir', '-p', '5433', '-U', user, '-d', 'postgres', '-f', '-',
      ]);
      expect(script).toMatch(/current_setting\('shared_preload_libraries'\)/);
      expect(script).toMatch(/CREATE EXTENSION IF NOT EXISTS pg_node_worker;\nSELECT 'pid=' \|\| node_worker.restart\(:'pgnw_name'\);/);
    });
  });
});

describe('status table', () => {
  const row = (r: Partial<StatusRow>): StatusRow => ({
    name: 'w', kind: 'static', pid: null, state: 'stopped', restarts: 0,
    started_at: null, last_exit_at: null, last_error: null, ...r,
  });

  it('aligns columns, right-aligns numbers, shows null as -, keeps the first line of an error', () => {
    const lines = formatStatusTable([
      row({ name: 'counter', pid: 12345, state: 'running', restarts: 2, started_at: '2026-11-27 10:00:00+00' }),
      row({ name: 'job', kind: 'dynamic', pid: 7, state: 'failed', restarts: 12, last_exit_at: '2026-11-27 10:01:00+00', last_error: 'main failed: Error: boom\n    at main (job.ts:3:9)' }),
    ]);
    expect(lines).toEqual([
      'name     kind       pid  state    restarts  started_at              last_exit_at            last_error',
      '-------  -------  -----  -------  --------  ----------------------  ----------------------  ------------------------',
      'counter  static   12345  running         2  2026-11-27 10:00:00+00  -                       -',
      'job      dynamic      7  failed         12  -                       2026-11-27 10:01:00+00  main failed: Error: boom',
      '(2 workers)',
    ]);
  });

  it('prints the header and a count for no workers', () => {
    expect(formatStatusTable([])).toEqual([
      'name  kind  pid  state  restarts  started_at  last_exit_at  last_error',
      '----  ----  ---  -----  --------  ----------  ------------  ----------',
      '(0 workers)',
    ]);
    expect(formatStatusTable([row({})])[3]).toBe('(1 worker)');
  });
});

describe('dev mode helpers', () => {
  it('picks the worker\'s lines out of the server log', () => {
    const f = new WorkerLogFilter('devw');
    const log = [
      '2026-11-27 11:04:16.231 UTC [3581] LOG:  pg_node_worker: registered worker "devw" (database "postgres", bundle /x/devw.js)',
      '2026-11-27 11:04:16.245 UTC [3581] LOG:  starting PostgreSQL 15.20',
      '2026-11-27 11:04:16.399 UTC [3588] LOG:  devw: hello',
      '\tsecond line',
      '2026-11-27 11:04:16.400 UTC [3588] WARNING:  something the runtime says without the prefix',
      '2026-11-27 11:04:16.401 UTC [3590] LOG:  other: not ours',
      '\tnor this',
      '2026-11-27 11:04:16.402 UTC [3591] ERROR:  relation "t" does not exist at character 15',
      '2026-11-27 11:04:16.402 UTC [3591] STATEMENT:  select * from t',
      '2026-11-27 11:04:16.500 UTC [3588] ERROR:  devw: main failed: Error: boom',
      '\t    at Object.main (/src/devw.ts:8:9)',
      '2026-11-27 11:04:16.501 UTC [3588] CONTEXT:  the worker',
      '2026-11-27 11:04:16.907 UTC [3581] LOG:  background worker "node_worker" (PID 3588) exited with exit code 1',
      '2026-11-27 11:04:16.908 UTC [3581] LOG:  background worker "node_worker" (PID 3590) exited with exit code 1',
      '2026-11-27 11:04:17.000 UTC [3600] LOG:  node worker "devw" failed 2 times in a row; backing off 1 s before starting',
      '2026-11-27 11:04:17.100 UTC [3601] FATAL:  the database system is shutting down',
      '2026-11-27 11:04:17.200 UTC [3588] LOG:  a reused pid is not the worker any more',
      '2026-11-27 11:04:17.300 UTC [3602] LOG:  node worker "devw2" is another worker',
    ];
    expect(log.map((l) => f.push(l)).filter((l) => l !== null)).toEqual([
      '11:04:16.231 pg_node_worker: registered worker "devw" (database "postgres", bundle /x/devw.js)',
      '11:04:16.399 devw: hello',
      '             second line',
      '11:04:16.400 WARNING: something the runtime says without the prefix',
      '11:04:16.500 ERROR: devw: main failed: Error: boom',
      '                 at Object.main (/src/devw.ts:8:9)',
      '11:04:16.501 CONTEXT: the worker',
      '11:04:16.907 background worker "node_worker" (PID 3588) exited with exit code 1',
      '11:04:17.000 node worker "devw" failed 2 times in a row; backing off 1 s before starting',
      '11:04:17.100 FATAL: the database system is shutting down',
    ]);
    // a pid restart() returned counts as the worker's from its first line
    f.addPid(4000);
    expect(f.push('2026-11-27 11:05:00.000 UTC [4000] ERROR:  could not load the bundle')).toBe('11:05:00.000 ERROR: could not load the bundle');
  });

  it('follows a growing file line by line', () => {
    const file = path.join(tmpdir(), 'server.log');
    const t = new FileTail(file);
    expect(t.poll()).toEqual([]); // not there yet
    fs.writeFileSync(file, 'one\ntw');
    expect(t.poll()).toEqual(['one']);
    fs.appendFileSync(file, 'o\nthree\n');
    expect(t.poll()).toEqual(['two', 'three']);
    expect(t.poll()).toEqual([]);
  });

  it('prints esbuild errors as file:line:col: message', async () => {
    const file = workerFile(`import { defineWorker } from 'pg-node-worker';\nexport default defineWorker({ name: 'w', main() { return (1 +; } });\n`);
    const e = await bundleError(file);
    expect(buildErrorLines(e)).toEqual([expect.stringMatching(new RegExp(`^  ${file.replace(/[.]/g, '\\.')}:2:\\d+: Unexpected ";"$`))]);
    expect(buildErrorLines(new CliError('w.ts does not export a worker'))).toEqual(['  w.ts does not export a worker']);
  });
});

describe('command line', () => {
  function io(env: NodeJS.ProcessEnv = {}) {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l), env } };
  }

  it('prints usage and version', async () => {
    const a = io();
    expect(await run(['--help'], a.io)).toBe(0);
    expect(a.out.join('\n')).toMatch(/pg-node-worker deploy FILE \[-D PGDATA\]/);
    expect(a.out.join('\n')).toMatch(/pg-node-worker build FILE \[-o OUT\]/);
    expect(a.out.join('\n')).toMatch(/pg-node-worker status \[-d CONNSTRING \| -D PGDATA\]/);
    expect(a.out.join('\n')).toMatch(/pg-node-worker dev FILE \[--port N\] \[--keep\]/);
    expect(a.out.join('\n')).toMatch(/peer authentication/);
    const b = io();
    expect(await run(['--version'], b.io)).toBe(0);
    expect(b.out[0]).toMatch(/^pg-node-worker \d+\.\d+\.\d+/);
    const c = io();
    expect(await run([], c.io)).toBe(2);
    expect(c.err.join('\n')).toMatch(/Usage:/);
  });

  it('rejects bad usage with exit status 2', async () => {
    for (const argv of [
      ['frobnicate', 'x.ts'],
      ['deploy', '--bogus', 'x.ts'],
      ['deploy', 'x.ts', 'y.ts'],
      ['build', '-D', '/x', 'w.ts'],
      ['deploy', 'x.ts'],
      ['status', 'x.ts', '-d', 'dbname=x'],
      ['status', '-d', 'dbname=x', '-D', '/x'],
      ['status'],
      ['status', '--restart', '-d', 'x'],
      ['dev'],
      ['dev', 'x.ts', '--port', 'abc'],
      ['dev', 'x.ts', '--port', '70000'],
      ['dev', 'x.ts', '-D', '/x'],
      ['deploy', 'x.ts', '--keep', '-D', '/x'],
    ]) {
      const a = io({});
      expect([argv, await run(argv, a.io)]).toEqual([argv, 2]);
      expect(a.err.join('\n')).toMatch(/^pg-node-worker: /);
    }
  });

  it('build writes the bundle and prints the definition', async () => {
    const dir = tmpdir();
    const file = fixture('cli-b1.ts');
    const outFile = path.join(dir, 'out', 'b1.js');
    const a = io();
    expect(await run(['build', file, '-o', outFile, '--target', 'node18.20'], a.io)).toBe(0);
    const meta = JSON.parse(a.out.join('\n'));
    const code = fs.readFileSync(outFile, 'utf8');
    expect(meta).toMatchObject({ name: 'b1', database: 'db', role: null, restart: 10, start: 'recovery-finished', nodeTarget: 'node18.20' });
    expect(meta.sha256).toBe(createHash('sha256').update(code).digest('hex'));
  });

  it('deploy takes PGDATA from the environment; CliErrors exit 2 without a stack', async () => {
    const pgdata = path.join(tmpdir(), 'nodata');
    const a = io({ PGDATA: pgdata });
    expect(await run(['deploy', fixture('cli-w.ts')], a.io)).toBe(2);
    expect(a.err).toEqual([`pg-node-worker: data directory ${pgdata} does not exist`]);
  });

  it('status -D of a data directory whose server is not running says so', async () => {
    const pgdata = path.join(tmpdir(), 'data');
    write(path.join(pgdata, 'PG_VERSION'), '15\n');
    const a = io({});
    expect(await run(['status', '-D', pgdata], a.io)).toBe(2);
    expect(a.err).toEqual([`pg-node-worker: the server of ${pgdata} is not running (no postmaster.pid)`]);
    const b = io({ PGDATA: pgdata });
    expect(await run(['status'], b.io)).toBe(2);
    expect(b.err).toEqual(a.err);
  });

  it('dev refuses a file that does not build before creating any cluster', async () => {
    const before = new Set(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('pgnw-dev-')));
    const file = workerFile(`export default 42;\n`);
    const a = io({});
    expect(await run(['dev', file, '--target', TARGET], a.io)).toBe(2);
    expect(a.err.join('\n')).toMatch(/does not export a worker/);
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('pgnw-dev-') && !before.has(f))).toEqual([]);
  });
});
