/**
 * A worker author's first steps, after `make install`, from an empty directory:
 * `pg-node-worker init demo && cd demo && npm install && npm test` passes (the SDK from the
 * installed tarball, vitest and TypeScript from the npm registry); `npm run typecheck` catches a
 * type error; the same project's test runs under node:test too; init refuses a non-empty folder.
 * Runs the installed `pg-node-worker` found on PATH, not the clone's.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let tmp: string;
let demo: string;

/** The environment of a user's shell: none of this test run's vitest variables. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(VITEST|NODE_OPTIONS$|NODE_ENV$|TEST$|npm_|FORCE_COLOR$)/.test(k)) env[k] = v;
  }
  env.NO_COLOR = '1';
  return env;
}

function sh(cmd: string, args: string[], cwd: string, timeoutMs = 120000): { status: number | null; out: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, env: userEnv(), encoding: 'utf8', timeout: timeoutMs });
  // without colours, whatever the terminal or CI says (the assertions read vitest's summary)
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.replace(/\x1b\[[0-9;]*m/g, '');
  console.log(`$ ${cmd} ${args.join(' ')}  (${((performance.now() - t0) / 1000).toFixed(1)} s, exit ${r.status})`);
  return { status: r.status, out };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-init-'));
  demo = path.join(tmp, 'demo');
});
afterAll(() => {
  if (tmp && !process.env.PGNW_KEEP_CLUSTERS) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('pg-node-worker init', () => {
  it('init demo && cd demo && npm install && npm test passes', async () => {
    const which = spawnSync('sh', ['-c', 'command -v pg-node-worker'], { encoding: 'utf8', env: userEnv() });
    expect(which.status, 'pg-node-worker is not on PATH: run make install').toBe(0);
    const init = sh('pg-node-worker', ['init', 'demo'], tmp);
    expect(init.status, init.out).toBe(0);
    expect(fs.readdirSync(demo).sort()).toEqual(['.gitignore', 'package.json', 'test', 'tsconfig.json', 'workers']);
    const pkg = JSON.parse(fs.readFileSync(path.join(demo, 'package.json'), 'utf8'));
    expect(pkg.devDependencies['pg-node-worker']).toMatch(/^file:\/.*\/pg_node_worker\/pg-node-worker-[\d.]+\.tgz$/);
    expect(Object.keys(pkg.scripts).sort()).toEqual(['deploy', 'dev', 'test', 'typecheck']);

    const install = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], demo);
    expect(install.status, install.out).toBe(0);
    const test = sh('npm', ['test'], demo);
    expect(test.status, test.out).toBe(0);
    expect(test.out).toMatch(/Tests\s+3 passed/);
    const typecheck = sh('npm', ['run', 'typecheck'], demo);
    expect(typecheck.status, typecheck.out).toBe(0);
  }, 180000);

  it('npm run typecheck catches a type error the bundler would let through', () => {
    const file = path.join(demo, 'workers', 'hello.ts');
    const good = fs.readFileSync(file, 'utf8');
    const bad = good.replace(
      'let calls = 0;',
      "let calls = 0;\n    const [count] = ctx.sql<{ n: bigint }>`SELECT count(*) AS n FROM pg_class`;\n    ctx.log.info(count!.n.toFixed(1));",
    );
    expect(bad).not.toBe(good);
    fs.writeFileSync(file, bad);
    try {
      const r = sh('npm', ['run', 'typecheck'], demo);
      expect(r.status).not.toBe(0);
      expect(r.out).toMatch(/workers\/hello\.ts\(\d+,\d+\): error TS\d+: Property 'toFixed' does not exist on type 'bigint'/);
    } finally {
      fs.writeFileSync(file, good);
    }
  }, 60000);

  it('the project can test with node:test as well', () => {
    fs.writeFileSync(
      path.join(demo, 'hello.node-test.mjs'),
      `import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from 'pg-node-worker/testing';

let pg;
before(async () => {
  pg = await startCluster();
  await pg.deploy('workers/hello.ts');
});
after(() => pg.stop());

test('hello answers', async () => {
  assert.deepEqual(await pg.call('hello', { name: 'node:test' }), { greeting: 'hello, node:test', calls: 1 });
});
`,
    );
    const r = sh(process.execPath, ['--test', '--test-reporter=tap', 'hello.node-test.mjs'], demo);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/# pass 1/);
  }, 60000);

  it('refuses a folder that is not empty, and changes nothing in it', () => {
    const dir = path.join(tmp, 'taken');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"mine"}\n');
    const r = sh('pg-node-worker', ['init', dir], tmp);
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/taken is not empty \(package\.json\): init writes only into an empty or new directory; --force/);
    expect(fs.readdirSync(dir)).toEqual(['package.json']);
    expect(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).toBe('{"name":"mine"}\n');
    const forced = sh('pg-node-worker', ['init', '--force', dir], tmp);
    expect(forced.status, forced.out).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name).toBe('taken');
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, '');
    expect(sh('pg-node-worker', ['init', file], tmp).out).toMatch(/a-file exists and is not a directory/);
    expect(sh('pg-node-worker', ['init', 'a', 'b'], tmp).out).toMatch(/init takes at most one DIR \(got 2\)/);
  });
});
