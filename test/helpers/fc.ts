/**
 * fast-check settings shared by the property suites.
 *
 * PGNW_FC_RUNS=<n> multiplies the number of runs of every property; FC_SEED=<seed> FC_PATH=<path>
 * replays a failure that a run printed.
 */
import type fc from 'fast-check';

export const RUNS = Math.max(1, Number(process.env.PGNW_FC_RUNS ?? 1));

/**
 * fast-check's parameters: `n` runs (times PGNW_FC_RUNS), shrinking stopped `limitMs` after the
 * start (a failing property then reports a less minimal counterexample, with its seed and path:
 * the replay, FC_SEED/FC_PATH, shrinks without a limit)
 */
export const runs = (n: number, limitMs?: number): fc.Parameters<unknown> =>
  process.env.FC_SEED
    ? { numRuns: n * RUNS, seed: Number(process.env.FC_SEED), path: process.env.FC_PATH }
    : { numRuns: n * RUNS, ...(limitMs ? { interruptAfterTimeLimit: limitMs * RUNS } : {}) };
