/**
 * Joins a start barrier (so that all adders run at once), then increments the counters of region
 * ctx.args.region n times: Atomics.add on an Int32Array and on a BigInt64Array, a compareExchange
 * loop, and a plain (non-atomic) ++ for comparison; then marks itself done.
 */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'adder',
  restart: 'never',
  async main(ctx) {
    const { region, n, workers } = ctx.args as { region: string; n: number; workers: number };
    const sab = ctx.shared(region, 64);
    const i32 = new Int32Array(sab);
    const i64 = new BigInt64Array(sab);
    Atomics.add(i32, 2, 1);
    const deadline = performance.now() + 30000;
    while (Atomics.load(i32, 2) < workers && performance.now() < deadline);
    for (let i = 0; i < n; i++) {
      Atomics.add(i32, 0, 1);
      Atomics.add(i64, 4, 1n);
      let old: number;
      do {
        old = Atomics.load(i32, 10);
      } while (Atomics.compareExchange(i32, 10, old, old + 1) !== old);
      i32[12]++;
    }
    Atomics.add(i32, 1, 1);
  },
});
