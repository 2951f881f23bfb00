/**
 * The rule ctx.jobs and ctx.schedule share for a synchronous callback (one not declared async):
 * it runs inside the transaction that claimed its work, in a savepoint of its own, so that a
 * throw rolls back only its own effects and the caller records the failure in the same
 * transaction.
 */
import type { Transaction } from '../types';

/**
 * Runs `fn` in a savepoint of `tx`: null when it returned, else what it threw as `describe`
 * writes it. A promise returned by `fn` is refused (a TypeError with `promiseMessage`, its
 * savepoint rolled back), as a transaction never spans an await. While `signal` is aborted the
 * error is thrown on instead: the shutdown cancelled a statement, so the whole transaction rolls
 * back and its work is left to the next process.
 */
export function runInSavepoint(
  tx: Transaction,
  fn: (inner: Transaction) => unknown,
  signal: AbortSignal,
  promiseMessage: string,
  describe: (err: unknown) => string,
): string | null {
  try {
    tx.transaction((inner) => {
      const result: unknown = fn(inner);
      if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
        // it may still reject later; that is no longer this transaction's business
        (result as Promise<unknown>).then(undefined, () => undefined);
        throw new TypeError(promiseMessage);
      }
    });
    return null;
  } catch (err) {
    if (signal.aborted) throw err;
    return describe(err);
  }
}
