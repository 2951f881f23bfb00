/**
 * What pg_config says about the server the CLI deploys for: which pg_config, its major version,
 * and the Node version of the installed extension (the esbuild target of bundles).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The extension's library, also the name of its folder in pkglibdir. */
export const LIBRARY = 'pg_node_worker';
/** The esbuild target when the installed extension's Node version is unknown. */
export const FALLBACK_NODE_TARGET = 'node18';

/** The pg_config to run: `explicit`, else $PG_CONFIG, else pg_config on PATH. */
export function pgConfigCommand(explicit?: string): string {
  return explicit || process.env.PG_CONFIG || 'pg_config';
}

/** The esbuild target to bundle for, and what pg_config said on the way. */
export interface NodeTargetInfo {
  target: string;
  /** from pg_config --pkglibdir, when pg_config ran */
  pkglibdir?: string;
  /** the server's major version according to pg_config, when known */
  pgMajor?: string;
}

/** The major version in a version text: 'PostgreSQL 15.20 (Debian ...)' -> '15'; '9.6.1' -> '9.6'. */
export function majorOf(version: string): string | undefined {
  const m = /(\d+)(?:\.(\d+))?/.exec(version);
  if (!m) return undefined;
  return Number(m[1]) >= 10 ? m[1] : `${m[1]}.${m[2] ?? '0'}`;
}

/**
 * The esbuild target for the Node embedded in the server: `<pkglibdir>/pg_node_worker/node-version`
 * ("18.20.4" -> "node18.20"). Not installed: node18, with a warning.
 */
export function resolveNodeTarget(pgConfig: string, warn: (l: string) => void): NodeTargetInfo {
  let out: string;
  try {
    out = execFileSync(pgConfig, ['--pkglibdir', '--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    warn(
      `warning: cannot run ${pgConfig} (${(e as Error).message.split('\n')[0]}); ` +
        `bundling for ${FALLBACK_NODE_TARGET} (set PG_CONFIG or use --target)`,
    );
    return { target: FALLBACK_NODE_TARGET };
  }
  const [pkglibdir = '', versionLine = ''] = out.split('\n').map((l) => l.trim());
  const pgMajor = majorOf(versionLine);
  const file = path.join(pkglibdir, LIBRARY, 'node-version');
  let version: string;
  try {
    version = fs.readFileSync(file, 'utf8').trim();
  } catch {
    warn(
      `warning: pg_node_worker is not installed in ${pkglibdir} (no ${file}); ` +
        `bundling for ${FALLBACK_NODE_TARGET}`,
    );
    return { target: FALLBACK_NODE_TARGET, pkglibdir, pgMajor };
  }
  const m = /^v?(\d+)\.(\d+)(\.\d+)?/.exec(version);
  if (!m) {
    warn(`warning: ${file} says ${JSON.stringify(version)}, not a version; bundling for ${FALLBACK_NODE_TARGET}`);
    return { target: FALLBACK_NODE_TARGET, pkglibdir, pgMajor };
  }
  return { target: `node${m[1]}.${m[2]}${m[3] ?? ''}`, pkglibdir, pgMajor };
}
