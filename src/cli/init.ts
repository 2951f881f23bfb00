/**
 * `pg-node-worker init [DIR]`: scaffolds a worker project: package.json (the SDK, TypeScript,
 * vitest, scripts dev/test/typecheck/deploy), a strict tsconfig for the Node version the
 * installed extension embeds, workers/hello.ts, test/hello.test.ts and .gitignore.
 *
 * The SDK dependency is the tarball `make install` put in `<pg_config --sharedir>/pg_node_worker/`
 * (a file: dependency), or what `--sdk` names (`pg-node-worker@0.1.0` once published). The other
 * packages come from the npm registry at the versions this SDK is tested with.
 *
 * Refuses a DIR that is not empty unless forced; even forced it writes only its own files
 * (overwriting those), never deleting anything.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError } from './errors';
import { writeFileAtomic } from './fsutil';
import { resolveNodeTarget } from './installed';

/** Options of init. */
export interface InitOptions {
  /** write into a non-empty directory, replacing the files init writes */
  force?: boolean;
  /** the SDK's npm spec (default: file:<sharedir>/pg_node_worker/pg-node-worker-<version>.tgz) */
  sdk?: string;
  pgConfig: string;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** What this SDK's own package.json says: its version and the versions it is tested with. */
interface OwnPackage {
  version: string;
  devDependencies: Record<string, string>;
}

function ownPackage(): OwnPackage {
  for (const p of [path.join(__dirname, '..', '..', 'package.json'), path.join(__dirname, '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as Partial<OwnPackage> & { name?: string };
      if (pkg.name === 'pg-node-worker' && pkg.version) return { version: pkg.version, devDependencies: pkg.devDependencies ?? {} };
    } catch {
      /* try the next */
    }
  }
  throw new Error('cannot find the package.json of pg-node-worker next to the CLI');
}

/** The tarball `make install` installs for this version: <sharedir>/pg_node_worker/pg-node-worker-<version>.tgz. */
export function installedSdkTarball(pgConfig: string, version: string): string {
  let sharedir: string;
  try {
    sharedir = execFileSync(pgConfig, ['--sharedir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    throw new CliError(`cannot run ${pgConfig} --sharedir (${(e as Error).message.split('\n')[0]}): set PG_CONFIG, or name the SDK with --sdk`);
  }
  return path.join(sharedir, 'pg_node_worker', `pg-node-worker-${version}.tgz`);
}

/** tsconfig lib for a Node major: the newest edition its V8 implements completely. */
export function esLibFor(nodeMajor: number): string {
  if (nodeMajor >= 22) return 'ES2024';
  if (nodeMajor >= 20) return 'ES2023';
  return 'ES2022';
}

/**
 * tsconfig target for a Node major: esLibFor(), but at most ES2023, since vitest's esbuild reads
 * the target to transform the tests and does not know ES2024 (it warns on every run).
 */
export function esTargetFor(nodeMajor: number): string {
  return nodeMajor >= 20 ? 'ES2023' : 'ES2022';
}

/** An npm package name made from a directory name (lower case, [a-z0-9-._]). */
export function packageNameOf(dir: string): string {
  const n = path
    .basename(path.resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+/, '')
    .slice(0, 214);
  return n || 'workers';
}

/** The files of a new project, by path relative to it. */
export function projectFiles(name: string, sdkSpec: string, nodeMajor: number, own: OwnPackage): Record<string, string> {
  const es = esTargetFor(nodeMajor);
  const lib = esLibFor(nodeMajor);
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    description: 'PostgreSQL background workers in TypeScript (pg_node_worker)',
    scripts: {
      dev: 'pg-node-worker dev workers/hello.ts',
      test: 'vitest run',
      typecheck: 'tsc --noEmit',
      deploy: 'pg-node-worker deploy workers/hello.ts --restart',
    },
    devDependencies: {
      '@types/node': `^${nodeMajor}`,
      'pg-node-worker': sdkSpec,
      typescript: own.devDependencies.typescript ?? '^5.9.0',
      vitest: own.devDependencies.vitest ?? '^2.1.9',
    },
  };
  const tsconfig = {
    compilerOptions: {
      // what the V8 of the Node embedded in the server implements
      target: es,
      lib: [lib],
      types: ['node'],
      module: 'ESNext',
      // esbuild bundles the workers and vitest runs the tests: resolve as a bundler does
      moduleResolution: 'Bundler',
      strict: true,
      noUncheckedIndexedAccess: true,
      noImplicitOverride: true,
      noFallthroughCasesInSwitch: true,
      isolatedModules: true,
      esModuleInterop: true,
      forceConsistentCasingInFileNames: true,
      skipLibCheck: true,
      noEmit: true,
    },
    include: ['workers', 'test'],
  };
  return {
    'package.json': JSON.stringify(pkg, null, 2) + '\n',
    'tsconfig.json': JSON.stringify(tsconfig, null, 2) + '\n',
    '.gitignore': 'node_modules/\n*.tgz\n.tmp/\n',
    'workers/hello.ts': HELLO_WORKER,
    'test/hello.test.ts': HELLO_TEST,
  };
}

const HELLO_WORKER = `/**
 * hello: a background worker that answers node_worker.call('hello', payload) from SQL and logs
 * what node_worker.notify('hello', payload) sends it.
 *
 *   npm run dev        a throwaway server running this worker, its log on the terminal
 *   npm test           test/hello.test.ts against a throwaway server
 *   npm run deploy -- -D $PGDATA    deploy it into a real server
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'hello',
  database: 'postgres',
  async main(ctx) {
    let calls = 0;
    ctx.onCall((payload) => {
      calls++;
      const who = typeof payload === 'object' && payload !== null && 'name' in payload ? String(payload.name) : 'world';
      return { greeting: \`hello, \${who}\`, calls };
    });
    const [row] = ctx.sql\`SELECT current_database() AS db, count(*) AS backends FROM pg_stat_activity\`;
    ctx.log.info(\`started in \${String(row?.db)} (\${String(row?.backends)} backends)\`);
    for await (const m of ctx.messages()) {
      ctx.log.info(\`message from \${m.role}: \${JSON.stringify(m.payload)}\`);
    }
  },
});
`;

const HELLO_TEST = `/**
 * workers/hello.ts on a throwaway PostgreSQL cluster (pg-node-worker/testing): the extension
 * must be installed in the server of pg_config (or $PG_CONFIG).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startCluster, type TestCluster } from 'pg-node-worker/testing';

let pg: TestCluster;

beforeAll(async () => {
  pg = await startCluster();
  await pg.deploy('workers/hello.ts');
}, 120_000);

afterAll(async () => {
  await pg?.stop();
});

test('logs that it started', async () => {
  await pg.waitForLog('hello', /hello: started in postgres/);
});

test('answers calls from SQL', async () => {
  expect(await pg.call('hello', { name: 'Ada' })).toEqual({ greeting: 'hello, Ada', calls: 1 });
  const [row] = await pg.query<{ r: unknown }>(\`SELECT node_worker.call('hello', '{}') AS r\`);
  expect(row?.r).toEqual({ greeting: 'hello, world', calls: 2 });
});

test('logs notifications once they commit', async () => {
  await pg.notify('hello', { id: 1 });
  await pg.waitForLog('hello', /message from postgres: \\{"id":1\\}/);
});
`;

/** Writes a new project into `dir` (created when missing); returns the files written. */
export function init(dir: string, opts: InitOptions): string[] {
  const abs = path.resolve(dir);
  let entries: string[] = [];
  try {
    const st = fs.statSync(abs);
    if (!st.isDirectory()) throw new CliError(`${dir} exists and is not a directory`);
    entries = fs.readdirSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (e instanceof CliError) throw e;
      throw new CliError(`cannot read ${dir}: ${(e as Error).message}`);
    }
  }
  if (entries.length > 0 && !opts.force) {
    const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? ', ...' : '');
    throw new CliError(`${dir} is not empty (${shown}): init writes only into an empty or new directory; --force writes its files there anyway, replacing those of the same name`);
  }
  const own = ownPackage();
  let sdk = opts.sdk;
  if (sdk && (/^\.{0,2}\//.test(sdk) || /\.tgz$/.test(sdk)) && !sdk.startsWith('file:')) {
    // a path is taken from where init runs, not from the project (where npm would resolve it)
    sdk = `file:${path.resolve(sdk)}`;
  }
  if (!sdk) {
    const tarball = installedSdkTarball(opts.pgConfig, own.version);
    if (!fs.existsSync(tarball)) {
      throw new CliError(`the SDK is not installed: no ${tarball} (run \`make install\` in pg_node_worker's clone for this server, or name the SDK with --sdk)`);
    }
    sdk = `file:${tarball}`;
  }
  const target = resolveNodeTarget(opts.pgConfig, opts.err).target;
  const major = Number(/^node(\d+)/.exec(target)?.[1] ?? '18');
  const files = projectFiles(packageNameOf(abs), sdk, major, own);
  // --force into a folder someone else can write to: never write through a link found there
  for (const sub of new Set(Object.keys(files).map((rel) => path.dirname(rel)).filter((d) => d !== '.'))) {
    const st = fs.lstatSync(path.join(abs, sub), { throwIfNoEntry: false });
    if (st && !st.isDirectory()) throw new CliError(`${path.join(dir, sub)} exists and is not a directory (init does not follow links)`);
  }
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(abs, rel);
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // a new file renamed into place: a link of that name is replaced, not written through
      writeFileAtomic(file, text, { mode: 0o644 });
    } catch (e) {
      throw new CliError(`cannot write ${file}: ${(e as Error).message}`);
    }
  }
  const shownDir = path.relative(process.cwd(), abs) || '.';
  opts.out(`created a worker project in ${shownDir} (Node ${major} target, SDK ${sdk})`);
  for (const rel of Object.keys(files)) opts.out(`  ${rel}`);
  opts.out('next:');
  if (shownDir !== '.') opts.out(`  cd ${shownDir}`);
  opts.out('  npm install');
  opts.out('  npm test            # workers/hello.ts on a throwaway server');
  opts.out('  npm run dev         # the same, live: rebuilt and restarted on every save');
  return Object.keys(files);
}
