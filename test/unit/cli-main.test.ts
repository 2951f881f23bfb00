/**
 * The CLI's command line (src/cli/main.ts run()) where it ends before any command runs: help,
 * version, usage errors. No server, no files.
 */
import { describe, expect, it } from 'vitest';
import { inspectPort, run, USAGE } from '../../src/cli/main';

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out, err };
}

describe('pg-node-worker command line', () => {
  it('--help prints the usage; no arguments print it to stderr with status 2', async () => {
    expect(await cli('--help')).toEqual({ code: 0, out: [USAGE.trimEnd()], err: [] });
    expect(await cli('deploy', '--help')).toEqual({ code: 0, out: [USAGE.trimEnd()], err: [] });
    expect(await cli()).toEqual({ code: 2, out: [], err: [USAGE.trimEnd()] });
  });

  it('--version', async () => {
    const r = await cli('--version');
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(/^pg-node-worker \d+\.\d+\.\d+/);
  });

  it.each([
    [['frobnicate', 'x.ts'], 'unknown command "frobnicate"'],
    [['toString', 'x.ts'], 'unknown command "toString"'],
    [['__proto__'], 'unknown command "__proto__"'],
    [['build', 'x.ts', '--restart'], 'option --restart does not apply to build'],
    [['deploy', 'x.ts', '--bogus'], "Unknown option '--bogus'"],
    [['deploy'], 'deploy takes one FILE (got 0)'],
    [['build', 'a.ts', 'b.ts'], 'build takes one FILE (got 2)'],
    [['deploy', 'x.ts'], 'no data directory: use -D PGDATA or set PGDATA'],
    [['status', 'x.ts'], 'status takes no FILE (got 1 argument)'],
    [['status'], 'status needs -d CONNSTRING or -D PGDATA (or PGDATA set)'],
    [['status', '-d', 'db', '-D', '/tmp'], 'status takes -d or -D, not both'],
    [['dev', 'x.ts', '--port', '0'], 'invalid --port 0'],
    [['dev', 'x.ts', '--port', '1e3'], 'invalid --port 1e3'],
    [['dev', '--port', '5432'], 'dev takes one FILE (got 0)'],
    [['dev', 'x.ts', '--inspect=0'], 'invalid --inspect 0'],
    [['dev', 'x.ts', '--inspect=abc'], 'invalid --inspect abc'],
    [['dev', 'x.ts', '--inspect=0.0.0.0:9229'], '--inspect=0.0.0.0:9229: the inspector listens on 127.0.0.1 only'],
    [['dev', 'x.ts', '--inspect=[::]:9229'], '--inspect=[::]:9229: the inspector listens on 127.0.0.1 only'],
    [['build', 'x.ts', '--inspect'], 'option --inspect does not apply to build'],
    [['init', 'a', 'b'], 'init takes at most one DIR (got 2)'],
    [['init', 'a', '--sdk', ' '], '--sdk needs a package spec'],
    [['init', 'a', '--restart'], 'option --restart does not apply to init'],
    [['deploy', 'x.ts', '--force'], 'option --force does not apply to deploy'],
  ])('%j is a usage error', async (argv, message) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toContain(`pg-node-worker: ${message}`);
    expect(r.err[0]).toMatch(/\nTry 'pg-node-worker --help'\.$/);
  });

  it('--inspect takes PORT or 127.0.0.1:PORT (a bare --inspect is 9229, not the next argument)', () => {
    expect(inspectPort('9230')).toBe(9230);
    expect(inspectPort('127.0.0.1:9231')).toBe(9231);
    expect(inspectPort('localhost:9232')).toBe(9232);
  });
});
