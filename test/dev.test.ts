/**
 * `pg-node-worker dev FILE`, driven like a developer would: start it, wait for the worker's log
 * line, edit the file, break it, fix it, Ctrl-C.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { CLI, cli } from './helpers/cli';
import { REPO, running, sleep, waitFor } from './helpers/cluster';
import { CdpClient } from './helpers/inspector';

/** The worker's source, version by version: written from a string, since the test edits it (and breaks it). */
const source = (text: string) => `import { defineWorker } from 'pg-node-worker';
import { suffix } from './lib/suffix';
export default defineWorker({
  name: 'devw',
  async main(ctx) {
    ctx.log.info('${text} from pid ' + ctx.worker.pid + suffix);
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
`;

/** Processes whose command line mentions `needle` (a postmaster names its data directory). */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle) && running(Number(d))) found.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return found;
}

/** `s` as a literal in a RegExp. */
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Saves a source file as an editor's safe write does (a new file renamed over the old one), so no
 * watcher can see it half-written. With in-place writes (truncate, then write) the type checker
 * once reported the file empty ("is not a module") and did not check it again.
 */
function save(file: string, text: string): void {
  fs.writeFileSync(file + '.saving', text);
  fs.renameSync(file + '.saving', file);
}

let child: ChildProcess | undefined;
let clusterDir: string | undefined;
const srcDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-devsrc-'));

afterAll(async () => {
  // a failed test must not leave the dev process or its cluster behind
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGINT');
    await sleep(3000);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  if (clusterDir && fs.existsSync(path.join(clusterDir, 'data', 'postmaster.pid'))) {
    const pid = Number(fs.readFileSync(path.join(clusterDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
    await sleep(500);
  }
  if (clusterDir) fs.rmSync(clusterDir, { recursive: true, force: true });
  fs.rmSync(srcDir, { recursive: true, force: true });
});

describe('dev', () => {
  it('runs the worker in a throwaway cluster, restarts it on save, survives a build error, cleans up on Ctrl-C', async () => {
    const file = path.join(srcDir, 'devw.ts');
    const lib = path.join(srcDir, 'lib', 'suffix.ts');
    fs.mkdirSync(path.dirname(lib));
    save(lib, `export const suffix = '';\n`);
    save(file, source('first version'));
    // the project's packages: typescript for the checker dev runs beside the worker
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(srcDir, 'node_modules'));

    let output = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child = spawn(process.execPath, [CLI, 'dev', file, '--port', '5439'], { cwd: REPO, env: { ...process.env } });
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    /** Waits for `re` in the output written after offset `from`; the message shows the output. */
    const see = async (re: RegExp, from = 0, timeoutMs = 20000): Promise<RegExpMatchArray> => {
      try {
        return await waitFor(`${re}`, () => output.slice(from).match(re), timeoutMs);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- dev output ---\n${output}`);
      }
    };

    const [, dir, port] = await see(/connect with: psql -h (\S+) -p (\d+) -U postgres\n/);
    clusterDir = dir;
    expect(port).toBe('5439');
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    const first = Number((await see(/^\S+ devw: first version from pid (\d+)$/m))[1]);

    const client = new pg.Client({ host: dir, port: Number(port), user: 'postgres', database: 'postgres' });
    client.on('error', () => undefined);
    await client.connect();
    const workerPid = async () =>
      (await client.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'node_worker' AND application_name = 'devw'")).rows.map((r) => r.pid);
    let third = 0;
    let withSuffix = 0;
    try {
      expect(await workerPid()).toEqual([first]);

      // save a change: rebuilt, redeployed, restarted
      let from = output.length;
      save(file, source('second version'));
      const second = Number((await see(/^\S+ devw: second version from pid (\d+)$/m, from))[1]);
      expect(second).not.toBe(first);
      expect(Number((await see(/^restarted devw \(pid (\d+)\)$/m, from))[1])).toBe(second);
      expect(await workerPid()).toEqual([second]);

      // a save of a local file it imports does the same
      from = output.length;
      save(lib, `export const suffix = ' (with a suffix)';\n`);
      withSuffix = Number((await see(/^\S+ devw: second version from pid (\d+) \(with a suffix\)$/m, from))[1]);
      // dev says "restarted" after it has passed on the new process's first log lines
      await see(new RegExp(`^restarted devw \\(pid ${withSuffix}\\)$`, 'm'), from);
      expect(withSuffix).not.toBe(second);
      expect(await workerPid()).toEqual([withSuffix]);
      await see(/^type check: no errors$/m);

      // a type error on line 6: tsc's file:line:col, and the worker is restarted all the same
      from = output.length;
      save(
        file,
        source('typed version').replace(`ctx.log.info('typed version`, `const wrong: number = ''; ctx.log.info('typed version`).replace('+ suffix)', '+ suffix + wrong)'),
      );
      const typed = Number((await see(/^\S+ devw: typed version from pid (\d+) \(with a suffix\)$/m, from))[1]);
      expect(typed).not.toBe(withSuffix);
      await see(new RegExp(`^type check: 1 error \\(the worker runs anyway\\):\\n  ${esc(file)}:6:11: error TS2322: Type 'string' is not assignable to type 'number'\\.$`, 'm'), from);
      expect(await workerPid()).toEqual([typed]);
      from = output.length;
      save(file, source('second version'));
      await see(/^type check: no errors$/m, from);
      withSuffix = Number((await see(/^\S+ devw: second version from pid (\d+) \(with a suffix\)$/m, from))[1]);
      // dev says "restarted" after it has passed on the new process's first log lines
      await see(new RegExp(`^restarted devw \\(pid ${withSuffix}\\)$`, 'm'), from);

      // a syntax error on line 6: esbuild's message with file:line:col, the old worker keeps running
      from = output.length;
      save(file, source('third version').replace(`'third version from pid ' +`, `'third version' +;`));
      await see(new RegExp(`build failed; worker "devw" keeps running the previous code:\\n  ${esc(file)}:6:\\d+: \\S.*\\n`), from);
      await sleep(1000);
      expect(output.slice(from)).not.toMatch(/restarted devw|third version/);
      expect(await workerPid()).toEqual([withSuffix]);

      // fixed: runs again
      from = output.length;
      save(file, source('third version'));
      third = Number((await see(/^\S+ devw: third version from pid (\d+) \(with a suffix\)$/m, from))[1]);
      expect(third).not.toBe(withSuffix);
      expect(await workerPid()).toEqual([third]);
    } finally {
      await client.end();
    }

    // Ctrl-C: the server stops, the directory goes, exit 0
    const postmaster = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(running(postmaster)).toBe(true);
    expect(processesMentioning(dir)).toContain(postmaster);
    child!.kill('SIGINT');
    const { code, signal } = await Promise.race([
      exited,
      sleep(20000).then(() => ({ code: -1, signal: null as NodeJS.Signals | null })),
    ]);
    expect({ code, signal }, output).toEqual({ code: 0, signal: null });
    expect(output).toContain(`stopped the server and removed ${dir}`);
    expect(fs.existsSync(dir)).toBe(false);
    expect(running(postmaster)).toBe(false);
    expect(running(third)).toBe(false);
    expect(processesMentioning(dir)).toEqual([]);
  }, 60000);

  it('--inspect: the worker opens the inspector on 127.0.0.1 and dev says where; a debugger attaches', async () => {
    const file = path.join(srcDir, 'devw.ts');
    // its own valid copy, whatever the test before left (lib/suffix.ts is the first test's)
    fs.mkdirSync(path.join(srcDir, 'lib'), { recursive: true });
    if (!fs.existsSync(path.join(srcDir, 'lib', 'suffix.ts'))) fs.writeFileSync(path.join(srcDir, 'lib', 'suffix.ts'), `export const suffix = '';\n`);
    save(file, source('inspected version'));
    const port = 20229 + (process.pid % 500);
    // refused before anything is made: another address, a port that is taken
    const remote = cli(['dev', file, '--inspect=0.0.0.0:9229']);
    expect(remote.status).toBe(2);
    expect(remote.stderr).toMatch(/the inspector listens on 127\.0\.0\.1 only/);
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    const taken = cli(['dev', file, `--inspect=${port}`, '--port', '5440']);
    squatter.close();
    expect(taken.status).toBe(2);
    expect(taken.stderr).toContain(`--inspect: cannot listen on 127.0.0.1:${port} (the port is in use)`);
    expect(taken.stdout).not.toMatch(/creating a throwaway cluster/);

    let output = '';
    const exited = new Promise<number | null>((resolve) => {
      child = spawn(process.execPath, [CLI, 'dev', file, '--port', '5440', `--inspect=${port}`, '--no-typecheck'], { cwd: REPO, env: { ...process.env } });
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      child.on('exit', (code) => resolve(code));
    });
    const see = async (re: RegExp): Promise<RegExpMatchArray> => {
      try {
        return await waitFor(`${re}`, () => output.match(re), 20000);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- dev output ---\n${output}`);
      }
    };
    clusterDir = (await see(/connect with: psql -h (\S+) /))[1];
    await see(new RegExp(`^debugger: "devw" listens on 127\\.0\\.0\\.1:${port} `, 'm'));
    await see(new RegExp(`^\\S+ devw: debugger listening on ws://127\\.0\\.0\\.1:${port}/\\S+ \\(DevTools: devtools://`, 'm'));
    expect(output).not.toMatch(/type check/);
    const evaluate = async (): Promise<unknown> => {
      const client = await CdpClient.connect(port);
      try {
        return ((await client.send('Runtime.evaluate', { expression: 'typeof process.pid + " " + (6 * 7)' })).result as { value: unknown }).value;
      } finally {
        client.close();
      }
    };
    expect(await evaluate()).toBe('number 42');
    // a save restarts the worker, whose new process opens the port again (a new URL)
    const from = output.length;
    save(file, source('restarted version'));
    const listening = new RegExp(`^\\S+ devw: debugger listening on ws://127\\.0\\.0\\.1:${port}/`, 'm');
    const restarted = () => listening.test(output.slice(from)) && /devw: restarted version from pid/.test(output.slice(from));
    await waitFor('the restarted worker to listen', restarted, 20000).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- dev output ---\n${output}`);
    });
    expect(await evaluate()).toBe('number 42');
    child!.kill('SIGINT');
    expect(await Promise.race([exited, sleep(20000).then(() => -1)]), output).toBe(0);
  }, 60000);
});
