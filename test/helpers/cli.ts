/**
 * Running the project's CLI (bin/pg-node-worker.js) and other programs the way an admin would.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO } from './cluster';

export const CLI = path.join(REPO, 'bin', 'pg-node-worker.js');
const ROOT = process.getuid?.() === 0;

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The CLI's environment: as root without PGUSER (it then connects as the data directory's owner,
 * as an admin's would); otherwise PGUSER is the clusters' superuser, the owner being whoever runs
 * the tests.
 */
export function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (ROOT) delete env.PGUSER;
  else env.PGUSER = 'postgres';
  return env;
}

/** Runs the CLI to its end, in `cwd` (default `/`). */
export function cli(args: string[], cwd = '/'): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: cliEnv(), cwd, timeout: 60000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a program to its end without blocking the test (the CLI while a server works, pgbench). */
export function run(file: string, args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, uid: opts.uid, gid: opts.gid, cwd: '/' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** cli(), without blocking the test. */
export const cliAsync = (...args: string[]): Promise<Run> => run(process.execPath, [CLI, ...args], { env: cliEnv() });
