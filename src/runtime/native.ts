/**
 * The shape of the N-API bridge (native/bridge.cc) as the runtime sees it, and the numbers both
 * sides must agree on (native/contract.h), checked when the worker starts.
 */

export interface NativePlan {
  id: number;
  paramTypes: number[];
  elemTypes: number[];
}

/**
 * What execute/executeText/cursorFetch return; the figures of the result are
 * in the result header (resultHeader(), H_* below), written by every call:
 *   H_FIELDS 0: the payload; 1: [payload, column names, column kinds (COL_*)]
 *   payload by H_LAYOUT: NONE undefined; SCALAR the one value of a 1x1 result;
 *   FLAT the values row-major (few rows); COLUMNS per column [data, nulls, offsets]
 *   (see ColumnToJs in native/convert.cc).
 */
export type NativeResult = unknown;

/** One message taken from the inbox (native/messaging.cc). */
export type InboxEntry = [
  isCall: boolean,
  requestId: string,
  callerProcno: number,
  callerPid: number,
  role: string,
  database: string,
  payloadJson: string,
  /** notify: its inbox position, for ack() */
  position: number,
  /** call: ms until its caller gives up */
  timeLeftMs: number,
  /** notify: an earlier process of this worker had it and did not finish */
  redelivered: boolean,
];

export interface NativeBridge {
  /** native/contract.h's numbers by name, and COMMANDS (see checkBridgeConstants) */
  constants: Record<string, unknown>;
  init(pgError: Function): void;
  info(): { name: string; database: string | null; role: string | null; pid: number; startedAt: number; forkToConnectedMs: number };
  prepare(sql: string): NativePlan;
  /** A prepared statement's parameter types as they are now (after DDL re-inferred them), or undefined. */
  planTypes(id: number): NativePlan | undefined;
  freePlan(id: number): void;
  /** The Float64Array every execute/cursorFetch writes the result's figures into (one, shared). */
  resultHeader(): Float64Array;
  /** Runs a prepared plan; knownShape: the shape id whose names the caller has (0: none). */
  execute(planId: number, knownShape: number, ...params: unknown[]): NativeResult;
  /** Runs SQL text (may hold several statements), no parameters. */
  executeText(sql: string): NativeResult;
  /** Opens a cursor; '' when the call was held for new parameter types (call again). */
  cursorOpen(planId: number, ...params: unknown[]): string;
  cursorFetch(name: string, count: number, planId: number, knownShape: number): NativeResult;
  cursorClose(name: string): void;
  begin(): number;
  commit(): void;
  rollback(): void;
  depth(): number;
  /** frees the big column buffers kept for the next statement (between statements) */
  dropResultBuffers(): void;
  log(level: number, message: string): void;
  setting(name: string): string | null;
  setTitle(title: string): void;
  exit(code: number): void;
  signalStats(): { forwarded: number; onMain: number; restored: number };
  /**
   * The ArrayBuffer budget (bytes): held now, the peak, the limit (null: none), allocations refused;
   * the heap limit in effect; the code range isolates get (0: V8's default).
   */
  memoryUsage(): { buffers: number; buffersPeak: number; bufferLimit: number | null; refused: number; heapLimit: number; codeRange: number; resultBuffers: number };
  shutdownRequested(): boolean;
  /** The big result buffers freed, a full GC and malloc_trim; with dropFilePages, the libraries' pages unmapped too (their kB returned). */
  releaseMemory(dropFilePages?: boolean): number;

  // control surface (native/control.cc)
  /** database null: the manifest's */
  launch(name: string, args: string | null, database: string | null): { pid: number; slot: number };
  childExitCode(slot: number, pid: number): number | null;
  markRunning(): void;
  reportError(code: string | null, text: string): void;
  isInRecovery(): boolean;
  workerArgs(): string | null;
  /** which of its worker's instances this process is (0-based; 0 for a launch) */
  workerInstance(): number;
  // inbox (native/messaging.cc)
  takeMessages(): [woken: boolean, abandoned: boolean, messages: InboxEntry[]];
  reply(callerProcno: number, requestId: string, isError: boolean, sqlstate: string | null, text: string): boolean;
  /** The notifications at these inbox positions were handled: their space is given back. */
  ack(positions: number[]): void;
  /** For each call: 0 its caller still waits, 1 it timed out, 2 it was cancelled or is gone. */
  callStates(procnos: number[], requestIds: string[]): number[];
  // buffer cache and shared regions (native/buffers.cc, native/shared.cc)
  buffersSnapshot(): {
    count: number;
    total: number;
    database: Uint32Array;
    tablespace: Uint32Array;
    relfilenode: Uint32Array;
    fork: Uint8Array;
    block: Uint32Array;
    dirty: Uint8Array;
    usage: Uint8Array;
  };
  buffersStats(): { total: number; used: number; unused: number; dirty: number; pinned: number; usageAverage: number };
  /** relation: name or oid; → [blocks, cached] */
  buffersResidency(relation: string | number, fork: string | null): [blocks: number, cached: number];
  buffersPrewarm(relation: string | number, fork: string | null, first: number | null, last: number | null): number;
  buffersReadPage(relation: string | number, block: number, fork: string | null): Uint8Array;
  sharedOpen(name: string, bytes: number): [buffer: SharedArrayBuffer, created: boolean];
}

// The numbers of native/contract.h. They are constants here (the row-making code reads them for
// every result); checkBridgeConstants() makes sure the installed bridge has the same.

// log levels of log()
export const LOG_DEBUG = 0;
export const LOG_INFO = 1;
export const LOG_NOTICE = 2;
export const LOG_WARNING = 3;
export const LOG_ERROR = 4;

// the result header's slots
export const H_COMMAND = 0;
export const H_COUNT = 1;
export const H_SHAPE = 2;
export const H_NROWS = 3;
export const H_NCOLS = 4;
export const H_LAYOUT = 5;
export const H_FIELDS = 6;
export const H_RETYPED = 7;
/** 1: the result needed big column buffers, kept for the next one (dropResultBuffers() frees them) */
export const H_KEPT = 8;
export const H_SIZE = 9;
// H_RETYPED values
export const RETYPED = 1; // the plan's parameter types changed: planTypes
export const RETYPED_HELD = 2; // and the call was not run: serialise again, call again

// payload layouts
export const LAYOUT_NONE = 0;
export const LAYOUT_SCALAR = 1;
export const LAYOUT_FLAT = 2;
export const LAYOUT_COLUMNS = 3;

// column kinds
export const COL_BOOL = 1;
export const COL_INT32 = 2;
export const COL_FLOAT64 = 3;
export const COL_INT64 = 4;
export const COL_DATE = 5;
export const COL_TEXT = 6;
export const COL_JSON = 7;
export const COL_BYTES = 8;
export const COL_VALUES = 9;

/** LAYOUT_COLUMNS: row r of a text column is data[r >>> TEXT_CHUNK_BITS][r & (2 ** TEXT_CHUNK_BITS - 1)] */
export const TEXT_CHUNK_BITS = 13;
/** LAYOUT_COLUMNS: a JSON column whose offsets slot is this holds parsed values (else chunks of text) */
export const JSON_PARSED = 1;

// callStates(): does the caller of a call still wait?
export const CALL_WAITING = 0;
export const CALL_TIMED_OUT = 1;
/** cancelled, failed or gone */
export const CALL_CANCELLED = 2;

/** the result's command (H_COMMAND), by value */
export const COMMANDS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'UTILITY'] as const;

/** Every value above by the name the bridge exports it under (native/bridge.cc's table). */
export const CONSTANTS: Readonly<Record<string, number | readonly string[]>> = Object.freeze({
  LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERROR,
  H_COMMAND, H_COUNT, H_SHAPE, H_NROWS, H_NCOLS, H_LAYOUT, H_FIELDS, H_RETYPED, H_KEPT, H_SIZE,
  RETYPED, RETYPED_HELD,
  LAYOUT_NONE, LAYOUT_SCALAR, LAYOUT_FLAT, LAYOUT_COLUMNS,
  COL_BOOL, COL_INT32, COL_FLOAT64, COL_INT64, COL_DATE, COL_TEXT, COL_JSON, COL_BYTES, COL_VALUES,
  TEXT_CHUNK_BITS, JSON_PARSED,
  CALL_WAITING, CALL_TIMED_OUT, CALL_CANCELLED,
  COMMANDS,
});

function sameConstant(a: unknown, b: number | readonly string[]): boolean {
  if (typeof b === 'number') return a === b;
  return Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);
}

function showConstant(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}

/**
 * Throws unless the loaded bridge's constants (exports.constants, native/contract.h) are the ones
 * this runtime.js was built with: a bridge and a runtime.js from different builds would misread
 * results and log levels. The error names each value they disagree on.
 */
export function checkBridgeConstants(bridge: { constants?: unknown }): void {
  const theirs = bridge.constants;
  if (typeof theirs !== 'object' || theirs === null) {
    throw new Error(
      'pg_node_worker_bridge.node exports no constants: it is older than runtime.js; rebuild and reinstall both (make && make install)',
    );
  }
  const got = theirs as Record<string, unknown>;
  const problems: string[] = [];
  for (const [name, ours] of Object.entries(CONSTANTS)) {
    if (!sameConstant(got[name], ours)) problems.push(`${name} is ${showConstant(got[name])} in the bridge but ${showConstant(ours)} in runtime.js`);
  }
  for (const name of Object.keys(got)) {
    if (!(name in CONSTANTS)) problems.push(`${name} is ${showConstant(got[name])} in the bridge but unknown to runtime.js`);
  }
  if (problems.length > 0) {
    throw new Error(
      `pg_node_worker_bridge.node and runtime.js come from different builds: ${problems.join('; ')}; rebuild and reinstall both (make && make install)`,
    );
  }
}
