/**
 * The shape of the N-API bridge (native/bridge.cc) as the runtime sees it.
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
 *   (see ColumnsToJs in bridge.cc).
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
  log(level: number, message: string): void;
  setting(name: string): string | null;
  setTitle(title: string): void;
  exit(code: number): void;
  signalStats(): { forwarded: number; onMain: number; restored: number };
  /** The ArrayBuffer budget (bytes): held now, the peak, the limit (null: none), allocations refused; the heap limit in effect. */
  memoryUsage(): { buffers: number; buffersPeak: number; bufferLimit: number | null; refused: number; heapLimit: number };
  shutdownRequested(): boolean;
  /** A full GC that shrinks V8's young generation, then malloc_trim (an idle worker's start-up garbage). */
  /** A full GC and malloc_trim; with dropFilePages, the libraries' pages unmapped too (their kB returned). */
  releaseMemory(dropFilePages?: boolean): number;

  // control surface (native/control.cc, issue #3)
  launch(name: string, args: string | null): { pid: number; slot: number };
  childExitCode(slot: number, pid: number): number | null;
  markRunning(): void;
  reportError(code: string | null, text: string): void;
  isInRecovery(): boolean;
  workerArgs(): string | null;
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

export const LOG_DEBUG = 0;
export const LOG_INFO = 1;
export const LOG_NOTICE = 2;
export const LOG_WARNING = 3;
export const LOG_ERROR = 4;

// the result header (bridge.cc H_*)
export const H_COMMAND = 0;
export const H_COUNT = 1;
export const H_SHAPE = 2;
export const H_NROWS = 3;
export const H_NCOLS = 4;
export const H_LAYOUT = 5;
export const H_FIELDS = 6;
export const H_RETYPED = 7;
// H_RETYPED values
export const RETYPED = 1; // the plan's parameter types changed: planTypes
export const RETYPED_HELD = 2; // and the call was not run: serialise again, call again

// payload layouts (bridge.cc LAYOUT_*)
export const LAYOUT_NONE = 0;
export const LAYOUT_SCALAR = 1;
export const LAYOUT_FLAT = 2;
export const LAYOUT_COLUMNS = 3;

// column kinds (guard.h PgnwColKind)
export const COL_BOOL = 1;
export const COL_INT32 = 2;
export const COL_FLOAT64 = 3;
export const COL_INT64 = 4;
export const COL_DATE = 5;
export const COL_TEXT = 6;
export const COL_JSON = 7;
export const COL_BYTES = 8;
export const COL_VALUES = 9;

/** guard.h PgnwCommand, by value */
export const COMMANDS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'UTILITY'] as const;
