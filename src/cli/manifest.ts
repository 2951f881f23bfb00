/**
 * The manifest deploy writes next to a bundle, `<node_worker.directory>/<name>.json`: what the
 * server reads to register and start the worker (extension/manifest.c reads it, with the rules of
 * extension/manifest_parse.c; the format is in docs/DESIGN.md).
 */
import type { WorkerMetadata } from '../define';
import type { StartTime } from '../types';

/** `<node_worker.directory>/<name>.json`, see docs/DESIGN.md. Field order is the documented one. */
export interface Manifest {
  format: 1;
  name: string;
  database: string;
  role: string | null;
  restart: number | 'never';
  start: StartTime;
  bundle: string;
  sha256: string;
  deployedAt: string;
  nodeTarget: string;
  /** roles that may call/notify/wake it, comma-separated (omitted: admins only) */
  callers?: string;
  /** the search_path, schema names comma-separated (omitted: pg_catalog only) */
  searchPath?: string;
  /** V8 heap limit in MB (omitted: node_worker.heap_limit_mb) */
  heapLimitMb?: number;
  /** ArrayBuffer/Buffer limit in MB (omitted: node_worker.buffer_limit_mb) */
  bufferLimitMb?: number;
  /** V8's young generation at most, in MB (omitted: V8 sizes it) */
  youngGenerationMb?: number;
  /** false: runs only when launched (omitted: starts with the server) */
  autostart?: false;
  /** processes started with the server (omitted: 1) */
  instances?: number;
}

/** What a manifest says about the deployment rather than the definition. */
export interface DeployedFiles {
  /** the bundle's file name, in the same directory */
  bundle: string;
  /** hex SHA-256 of the bundle */
  sha256: string;
  deployedAt: Date;
  /** the esbuild target the bundle was made for */
  nodeTarget: string;
}

/** The manifest of a checked definition (definitionMetadata) deployed as `files`. */
export function manifestOf(definition: WorkerMetadata, files: DeployedFiles): Manifest {
  return {
    format: 1,
    name: definition.name,
    database: definition.database,
    role: definition.role,
    restart: definition.restart,
    start: definition.start,
    bundle: files.bundle,
    sha256: files.sha256,
    deployedAt: files.deployedAt.toISOString(),
    nodeTarget: files.nodeTarget,
    ...(definition.callers ? { callers: definition.callers.join(',') } : {}),
    ...(definition.searchPath ? { searchPath: definition.searchPath.join(',') } : {}),
    ...(definition.heapLimitMb ? { heapLimitMb: definition.heapLimitMb } : {}),
    ...(definition.bufferLimitMb ? { bufferLimitMb: definition.bufferLimitMb } : {}),
    ...(definition.youngGenerationMb ? { youngGenerationMb: definition.youngGenerationMb } : {}),
    ...(definition.autostart ? {} : { autostart: false as const }),
    ...(definition.instances > 1 ? { instances: definition.instances } : {}),
  };
}

/** The manifest as written to its file. */
export function manifestText(manifest: Manifest): string {
  return JSON.stringify(manifest, null, 2) + '\n';
}
