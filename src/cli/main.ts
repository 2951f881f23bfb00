/**
 * The `pg-node-worker` command line.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleWorker, displayPath } from './bundle';
import { deploy } from './deploy';
import { pgConfigCommand, resolveNodeTarget } from './installed';
import { dev } from './dev';
import { init } from './init';
import { status } from './status';
import { CliError } from './errors';
import { writeFileAtomic } from './fsutil';
import { printLine } from './terminal';

/** The text of --help. */
export const USAGE = `Usage:
  pg-node-worker deploy FILE [-D PGDATA] [--directory DIR] [--config-file CONF]
                             [--target node18.20] [--restart]
  pg-node-worker build FILE [-o OUT] [--target node18.20]
  pg-node-worker status [-d CONNSTRING | -D PGDATA]
  pg-node-worker dev FILE [--port N] [--keep] [--inspect[=PORT]] [--no-typecheck]
                          [--target node18.20]
  pg-node-worker init [DIR] [--force] [--sdk SPEC]
  pg-node-worker --help | --version

FILE is a .ts or .js module whose default export is defineWorker({ name, main, ... })
from 'pg-node-worker'. It is bundled (npm packages resolved from FILE's folder) into one
script for the Node embedded in the server.

Commands:
  deploy   Write <name>.js (then <name>.json) atomically into the worker directory of
           the data directory and add pg_node_worker to shared_preload_libraries (in
           postgresql.auto.conf, as ALTER SYSTEM would). A stopped server runs the
           worker when it starts; a running one when the worker restarts
           (SELECT node_worker.restart('<name>')), which --restart does.
  build    Write the bundle to OUT (default ./<name>.js) and print the definition as
           JSON. Touches no data directory.
  status   Print the view node_worker.workers as a table (needs CREATE EXTENSION
           pg_node_worker in that database).
  dev      Create a throwaway cluster in a temp directory (socket only, trust
           authentication, directory mode 0700), deploy FILE, start the server and
           show the worker's log lines. Every save of FILE or of a local file it
           imports rebuilds and restarts the worker; a build error is shown and the
           previous code keeps running. The project's TypeScript checker runs
           alongside (watch mode): type errors are printed with file:line and do
           not hold back the restart. Ctrl-C (or SIGTERM, SIGQUIT, SIGHUP: a
           closed terminal) stops the server and removes the directory.
  init     Create a worker project in DIR (default: the current directory; created
           when missing, refused when not empty): package.json (the SDK, TypeScript,
           vitest; scripts dev, test, typecheck, deploy), a strict tsconfig.json for
           the Node version the installed extension embeds, workers/hello.ts,
           test/hello.test.ts (pg-node-worker/testing) and .gitignore. Then:
           npm install && npm test.

Options:
  -D, --pgdata DIR       data directory (default: $PGDATA)
      --directory DIR    where the worker goes (default: the node_worker.directory
                         setting, relative to PGDATA; else PGDATA/node_worker)
                         Run as root, deploy follows no symbolic link inside PGDATA
                         (its owner can place them), and uses a node_worker.directory
                         outside PGDATA only when it exists and belongs to PGDATA's
                         owner (the setting is in files that owner can change);
                         --directory DIR is taken as given.
      --config-file CONF the server's postgresql.conf when it is not in PGDATA and the
                         server was never started (else found from postmaster.opts)
      --target TARGET    esbuild target (default: the Node version of the installed
                         extension, <pg_config --pkglibdir>/pg_node_worker/node-version;
                         node18 when it is not installed)
      --restart          (deploy) when the server is running: restart just this
                         worker so that the new code runs; the server keeps running
                         and the new pid is printed. Not running: nothing is
                         restarted (the code runs at the next start). A server that
                         was started without pg_node_worker in
                         shared_preload_libraries cannot restart a worker: deploy
                         then says to restart the server (exit status 2) and does
                         not do it.
  -o, --out FILE         (build) where to write the bundle
  -d, --dbname CONN      (status) a connection string, URI or database name, as for
                         psql -d; psql runs as you
      --port N           (dev) port of the socket (default 5432; the socket is in the
                         cluster's own directory, so no other server is in the way)
      --keep             (dev) on exit, stop the server but keep the directory
      --inspect[=PORT]   (dev) the worker opens Node's inspector on 127.0.0.1:PORT
                         (default 9229; never another address) and logs its
                         DevTools URL: breakpoints, stepping, evaluation
      --no-typecheck     (dev) do not run the TypeScript checker
      --force            (init) write into a non-empty DIR, replacing files of the
                         same names (nothing else is touched)
      --sdk SPEC         (init) the SDK dependency (default: the tarball make install
                         put in <pg_config --sharedir>/pg_node_worker/, as file:PATH)
  -h, --help             show this help
  -v, --version          show the version

Connecting (deploy --restart, status -D): over the unix socket named in
PGDATA/postmaster.pid (its socket directory and port), database postgres, as the
database user $PGUSER or else the name of the data directory's owner. SQL goes through
psql (<pg_config --bindir>/psql); when the CLI runs as root, psql runs as the data
directory's owner, so that peer authentication (Debian's default for local
connections: the OS user must be the database user) accepts it, as does trust. Other
methods take libpq's usual settings (PGPASSWORD, ~/.pgpass, PGSERVICE).

Environment:
  PGDATA     default for -D
  PG_CONFIG  the pg_config to use (default: pg_config on PATH)
  PGUSER     the database user for deploy --restart and status -D

Exit status: 0 done, 2 usage or input error (message on stderr), 1 internal error.
`;

/** Where the CLI prints, and the environment it reads. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Every line the CLI prints goes through printLine: control characters in it are escaped. */
const defaultIo: Io = {
  out: (l) => printLine(process.stdout, l),
  err: (l) => printLine(process.stderr, l),
  env: process.env,
};

function version(): string {
  for (const p of [path.join(__dirname, '..', '..', 'package.json'), path.join(__dirname, '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pg-node-worker' && pkg.version) return pkg.version;
    } catch {
      /* try the next */
    }
  }
  return 'unknown';
}

const OPTIONS = {
  pgdata: { type: 'string', short: 'D' },
  directory: { type: 'string' },
  'config-file': { type: 'string' },
  target: { type: 'string' },
  restart: { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  dbname: { type: 'string', short: 'd' },
  port: { type: 'string' },
  keep: { type: 'boolean' },
  inspect: { type: 'string' },
  'no-typecheck': { type: 'boolean' },
  force: { type: 'boolean' },
  sdk: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

function usageError(msg: string): CliError {
  return new CliError(`${msg}\nTry 'pg-node-worker --help'.`);
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

/** argv parsed by OPTIONS. */
function parseCommandLine(argv: string[]): { values: Values; positionals: string[] } {
  // a bare --inspect takes the default port (else it would take the next argument as its value)
  const args = argv.map((a) => (a === '--inspect' ? `--inspect=${DEFAULT_INSPECT_PORT}` : a));
  try {
    return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError((e as Error).message);
  }
}

/** The one FILE argument of deploy, build and dev. */
function oneFile(command: string, rest: string[]): string {
  if (rest.length !== 1) throw usageError(`${command} takes one FILE (got ${rest.length})`);
  return rest[0];
}

async function runStatus(values: Values, rest: string[], io: Io): Promise<number> {
  if (rest.length !== 0) throw usageError(`status takes no FILE (got ${rest.length} argument${rest.length === 1 ? '' : 's'})`);
  if (values.dbname !== undefined && values.pgdata !== undefined) throw usageError('status takes -d or -D, not both');
  const pgdata = values.dbname === undefined ? values.pgdata || io.env.PGDATA : undefined;
  if (values.dbname === undefined && !pgdata) throw usageError('status needs -d CONNSTRING or -D PGDATA (or PGDATA set)');
  await status({ conninfo: values.dbname, pgdata, pgConfig: pgConfigCommand(io.env.PG_CONFIG), log: io.out });
  return 0;
}

/** Node's own default inspector port. */
const DEFAULT_INSPECT_PORT = 9229;

/**
 * The port of `--inspect=[HOST:]PORT`. HOST may only name the loopback address: whoever reaches
 * the inspector runs any code as the server's OS user.
 */
export function inspectPort(value: string): number {
  const m = /^(?:(.*):)?(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw usageError(`invalid --inspect ${value}: give a port, e.g. --inspect=9229`);
  if (m[1] !== undefined && !['127.0.0.1', 'localhost'].includes(m[1]))
    throw usageError(
      `--inspect=${value}: the inspector listens on 127.0.0.1 only (whoever reaches it runs any code as the server's OS user); ` +
        'to debug from another machine, forward the port over SSH (ssh -L 9229:127.0.0.1:9229 ...)',
    );
  return port;
}

async function runDev(values: Values, rest: string[], io: Io): Promise<number> {
  const file = oneFile('dev', rest);
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) throw usageError(`invalid --port ${values.port}`);
  }
  return await dev(file, {
    port,
    keep: values.keep,
    inspectPort: values.inspect === undefined ? undefined : inspectPort(values.inspect),
    typeCheck: !values['no-typecheck'],
    nodeTarget: values.target,
    pgConfig: pgConfigCommand(io.env.PG_CONFIG),
    out: io.out,
    err: io.err,
  });
}

async function runInit(values: Values, rest: string[], io: Io): Promise<number> {
  if (rest.length > 1) throw usageError(`init takes at most one DIR (got ${rest.length})`);
  if (values.sdk !== undefined && values.sdk.trim() === '') throw usageError('--sdk needs a package spec (a path, file:PATH or pg-node-worker@VERSION)');
  init(rest[0] ?? '.', { force: values.force, sdk: values.sdk, pgConfig: pgConfigCommand(io.env.PG_CONFIG), out: io.out, err: io.err });
  return 0;
}

async function runDeploy(values: Values, rest: string[], io: Io): Promise<number> {
  const file = oneFile('deploy', rest);
  const pgdata = values.pgdata || io.env.PGDATA;
  if (!pgdata) throw usageError('no data directory: use -D PGDATA or set PGDATA');
  await deploy(file, {
    pgdata,
    directory: values.directory,
    configFile: values['config-file'],
    nodeTarget: values.target,
    pgConfig: pgConfigCommand(io.env.PG_CONFIG),
    restart: values.restart,
    log: io.out,
    warn: io.err,
  });
  return 0;
}

async function runBuild(values: Values, rest: string[], io: Io): Promise<number> {
  const file = oneFile('build', rest);
  const nodeTarget = values.target ?? resolveNodeTarget(pgConfigCommand(io.env.PG_CONFIG), io.err).target;
  const { code, definition, warnings } = await bundleWorker(file, { nodeTarget });
  for (const w of warnings) io.err(`warning: ${w}`);
  const out = path.resolve(values.out ?? `${definition.name}.js`);
  if (out === path.resolve(file)) throw new CliError(`refusing to overwrite ${file} with its bundle: use -o`);
  try {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    // a new file renamed into place: a link at OUT (which whoever can write in that directory
    // may have put there) is replaced, not written through
    writeFileAtomic(out, code, { mode: 0o644 });
  } catch (e) {
    throw new CliError(`cannot write ${out}: ${(e as Error).message}`);
  }
  io.out(
    JSON.stringify(
      {
        ...definition,
        nodeTarget,
        bundle: displayPath(out),
        bytes: Buffer.byteLength(code, 'utf8'),
        sha256: createHash('sha256').update(code, 'utf8').digest('hex'),
      },
      null,
      2,
    ),
  );
  return 0;
}

/** Each command: the options it takes and what runs it. */
const COMMANDS: Record<string, { options: readonly string[]; run: (values: Values, rest: string[], io: Io) => Promise<number> }> = {
  deploy: { options: ['pgdata', 'directory', 'config-file', 'target', 'restart', 'help'], run: runDeploy },
  build: { options: ['out', 'target', 'help'], run: runBuild },
  status: { options: ['dbname', 'pgdata', 'help'], run: runStatus },
  dev: { options: ['port', 'keep', 'inspect', 'no-typecheck', 'target', 'help'], run: runDev },
  init: { options: ['force', 'sdk', 'help'], run: runInit },
};

/** The command line after parsing: its exit status. */
async function dispatch(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  if (values.version) {
    io.out(`pg-node-worker ${version()}`);
    return 0;
  }
  if (positionals.length === 0 && !values.help) {
    io.err(USAGE.trimEnd());
    return 2;
  }
  if (values.help) {
    io.out(USAGE.trimEnd());
    return 0;
  }
  const [command, ...rest] = positionals;
  const spec = Object.prototype.hasOwnProperty.call(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!spec) throw usageError(`unknown command "${command}"`);
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined && !spec.options.includes(k)) throw usageError(`option --${k} does not apply to ${command}`);
  }
  return await spec.run(values, rest, io);
}

/** Run the CLI; returns the exit status. Does not exit. */
export async function run(argv: string[], io: Io = defaultIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`pg-node-worker: ${e.message}`);
      return 2;
    }
    io.err(e instanceof Error && e.stack ? e.stack : String(e));
    return 1;
  }
}

/**
 * Entry point of bin/pg-node-worker.js. Exits explicitly: deploying runs the worker module's
 * top-level code, whose timers or sockets must not keep the CLI alive.
 */
export function cli(argv: string[] = process.argv.slice(2)): void {
  run(argv).then(
    (code) => process.exit(code),
    (e) => {
      printLine(process.stderr, e instanceof Error && e.stack ? e.stack : String(e));
      process.exit(1);
    },
  );
}

if (require.main === module) cli();
