/**
 * The shape of the N-API bridge (native/bridge.cc) as the runtime sees it.
 */

export interface NativePlan {
  id: number;
  paramTypes: number[];
  elemTypes: number[];
}

/** [command, count (rows returned or affected), column names, values (flat, row-major)] */
export type NativeResult = [command: string, count: number, fields: string[], values: unknown[]];

export interface NativeBridge {
  init(pgError: Function): void;
  info(): { name: string; database: string | null; role: string | null; pid: number; startedAt: number; forkToConnectedMs: number };
  prepare(sql: string): NativePlan;
  freePlan(id: number): void;
  execute(planId: number, sql: string, params: unknown[]): NativeResult;
  cursorOpen(planId: number, sql: string, params: unknown[]): string;
  cursorFetch(name: string, count: number): NativeResult;
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
  shutdownRequested(): boolean;
}

export const LOG_DEBUG = 0;
export const LOG_INFO = 1;
export const LOG_NOTICE = 2;
export const LOG_WARNING = 3;
export const LOG_ERROR = 4;
