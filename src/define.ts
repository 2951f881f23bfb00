/**
 * defineWorker and the rules of a worker definition: one place, used by the
 * SDK (defineWorker), the CLI (deploy/build) and the in-server runtime.
 */
import type { StartTime, WorkerDefinition } from './types';

/** Marks objects made by defineWorker; the runtime and the CLI check it. */
export const DEFINITION_BRAND: unique symbol = Symbol.for('pg-node-worker.definition') as never;

/** A worker name: it names the files <name>.js/<name>.json and the process "node_worker <name>". */
export const WORKER_NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
/** The values of `start`, in the order the server reaches them. */
export const START_TIMES: readonly StartTime[] = ['postmaster', 'consistent', 'recovery-finished'];
/** The database of a definition that names none. */
export const DEFAULT_DATABASE = 'postgres';
/** The restart interval (seconds) of a definition that gives none. */
export const DEFAULT_RESTART = 10;
/** The start time of a definition that gives none. */
export const DEFAULT_START: StartTime = 'recovery-finished';
/** The most instances a definition may ask for (PGNW_MAX_INSTANCES in extension/pg_node_worker.h). */
export const MAX_INSTANCES = 1024;
/** The longest restart interval (seconds): a day. */
export const MAX_RESTART = 86400;
/** NAMEDATALEN - 1 */
const MAX_IDENT_BYTES = 63;
/**
 * The longest `callers` or `searchPath` list, in bytes as the server counts them (its manifest
 * fields hold 512 bytes with the NUL: PgnwManifest in extension/pg_node_worker.h). Names are
 * UTF-8 in the manifest, so 'é' counts 2.
 */
const MAX_NAME_LIST_BYTES = 511;

/** The fields of a definition that go into the manifest, with defaults applied. */
export interface WorkerMetadata {
  name: string;
  database: string;
  /** null: the bootstrap superuser */
  role: string | null;
  /** seconds, or 'never' */
  restart: number | 'never';
  start: StartTime;
  /** roles that may call/notify/wake it besides admins; null: none (also for an empty list) */
  callers: string[] | null;
  /** the session's search_path; null: pg_catalog only (also for an empty list) */
  searchPath: string[] | null;
  /** V8 heap limit in MB; null: node_worker.heap_limit_mb */
  heapLimitMb: number | null;
  /** ArrayBuffer/Buffer limit in MB; null: node_worker.buffer_limit_mb */
  bufferLimitMb: number | null;
  /** V8's young generation at most, in MB; null: V8's own sizing */
  youngGenerationMb: number | null;
  /** false: runs only when launched */
  autostart: boolean;
  /** processes started with the server */
  instances: number;
}

/** Explains why a worker name is invalid, or returns null when it is fine. */
export function workerNameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return 'the definition needs a name (a string)';
  if (WORKER_NAME_RE.test(name)) return null;
  return (
    `invalid worker name ${JSON.stringify(name)}: a name is 1 to 63 ASCII characters, letters, ` +
    `digits, '_' or '-', starting with a letter or '_' (it names the files <name>.js and ` +
    `<name>.json and the process "node_worker <name>")`
  );
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return typeof v;
}

function checkIdent(where: string, what: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new TypeError(`${where}: ${what} must be a non-empty string`);
  if (v.includes('\0')) throw new TypeError(`${where}: ${what} must not contain NUL`);
  if (Buffer.byteLength(v, 'utf8') > MAX_IDENT_BYTES)
    throw new TypeError(`${where}: ${what} ${JSON.stringify(v)} is longer than ${MAX_IDENT_BYTES} bytes`);
  return v;
}

/**
 * Checks a definition and returns its manifest fields with defaults applied.
 *
 * @throws TypeError naming the first problem found.
 */
export function definitionMetadata(def: unknown): WorkerMetadata {
  if (def === null || typeof def !== 'object') throw new TypeError('a worker definition must be an object');
  const d = def as Record<string, unknown>;
  const nameProblem = workerNameProblem(d.name);
  if (nameProblem) throw new TypeError(nameProblem);
  const name = d.name as string;
  const where = `worker "${name}"`;
  if (typeof d.main !== 'function') throw new TypeError(`${where}: main must be a function`);

  const database = d.database === undefined ? DEFAULT_DATABASE : checkIdent(where, 'database', d.database);
  const role = d.role === undefined ? null : checkIdent(where, 'role', d.role);

  let restart: number | 'never';
  if (d.restart === undefined) restart = DEFAULT_RESTART;
  else if (d.restart === 'never') restart = 'never';
  else if (typeof d.restart === 'number' && Number.isInteger(d.restart) && d.restart >= 0 && d.restart <= MAX_RESTART)
    restart = d.restart;
  else
    throw new TypeError(
      `${where}: restart must be an integer number of seconds from 0 to ${MAX_RESTART}, or 'never' (got ${describe(d.restart)})`,
    );

  let start: StartTime;
  if (d.start === undefined) start = DEFAULT_START;
  else if (typeof d.start === 'string' && (START_TIMES as readonly string[]).includes(d.start)) start = d.start as StartTime;
  else
    throw new TypeError(
      `${where}: start must be one of ${START_TIMES.map((s) => `'${s}'`).join(', ')} (got ${describe(d.start)})`,
    );
  const callers = nameList(where, 'callers', 'role', d.callers, 'list fewer roles, or grant one role to the callers and list that');
  const searchPath = nameList(where, 'searchPath', 'schema', d.searchPath, 'list fewer schemas');
  if (d.maxPendingCalls !== undefined && (typeof d.maxPendingCalls !== 'number' || !Number.isInteger(d.maxPendingCalls) || d.maxPendingCalls < 1 || d.maxPendingCalls > 1_000_000))
    throw new TypeError(`${where}: maxPendingCalls must be an integer from 1 to 1000000 (got ${describe(d.maxPendingCalls)})`);

  const heapLimitMb = megabytes(where, 'heapLimitMb', d.heapLimitMb, 16, 65536);
  const bufferLimitMb = megabytes(where, 'bufferLimitMb', d.bufferLimitMb, 16, 1048576);
  const youngGenerationMb = megabytes(where, 'youngGenerationMb', d.youngGenerationMb, 1, 1024);
  if (d.autostart !== undefined && typeof d.autostart !== 'boolean')
    throw new TypeError(`${where}: autostart must be true or false (got ${describe(d.autostart)})`);
  const autostart = d.autostart !== false;
  let instances = 1;
  if (d.instances !== undefined) {
    if (typeof d.instances !== 'number' || !Number.isInteger(d.instances) || d.instances < 1 || d.instances > MAX_INSTANCES)
      throw new TypeError(`${where}: instances must be an integer from 1 to ${MAX_INSTANCES} (got ${describe(d.instances)})`);
    if (d.instances > 1 && !autostart)
      throw new TypeError(`${where}: instances must be 1 when autostart is false (each launch starts one process)`);
    instances = d.instances;
  }
  return { name, database, role, restart, start, callers, searchPath, heapLimitMb, bufferLimitMb, youngGenerationMb, autostart, instances };
}

/**
 * Declares a worker. Export the result as the module's default export:
 *
 * ```ts
 * export default defineWorker({ name: 'counter', async main(ctx) { ... } });
 * ```
 *
 * @throws TypeError when the definition is invalid.
 */
export function defineWorker<T extends WorkerDefinition>(def: T): T {
  definitionMetadata(def);
  Object.defineProperty(def, DEFINITION_BRAND, { value: true, enumerable: false });
  return def;
}

/**
 * An optional list of names (roles, schemas) that the manifest keeps joined by commas: each a
 * valid identifier without commas (the server compares them exactly), at most
 * MAX_NAME_LIST_BYTES joined, counted as the server counts (UTF-8). Null when not given or empty:
 * an empty list means what no list means, and the server refuses an empty searchPath.
 */
function nameList(where: string, field: string, what: string, v: unknown, shorter: string): string[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v)) throw new TypeError(`${where}: ${field} must be an array of ${what} names`);
  if (v.length === 0) return null;
  const names = v.map((n) => checkIdent(where, `each of ${field}`, n));
  for (const n of names)
    if (n.includes(',')) throw new TypeError(`${where}: ${field}: ${what} ${JSON.stringify(n)} must not contain commas`);
  const bytes = Buffer.byteLength(names.join(','), 'utf8');
  if (bytes > MAX_NAME_LIST_BYTES)
    throw new TypeError(
      `${where}: ${field}: the list is ${bytes} bytes (UTF-8, with the commas between names), more than the ` +
        `${MAX_NAME_LIST_BYTES} the server accepts: ${shorter}`,
    );
  return names;
}

/** An optional integer number of megabytes from min to max; null when not given. */
function megabytes(where: string, field: string, v: unknown, min: number, max: number): number | null {
  if (v === undefined) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new TypeError(`${where}: ${field} must be an integer from ${min} to ${max} (got ${describe(v)})`);
  return v;
}
