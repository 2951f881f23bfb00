/**
 * Runs only when launched, with youngGenerationMb: 3. A call makes objects of which many survive
 * a while (what makes V8 grow its young generation) and answers with the largest new space V8
 * reported meanwhile, in bytes.
 */
import * as v8 from 'node:v8';
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  name: 'young',
  autostart: false,
  youngGenerationMb: 3,
  async main(ctx) {
    ctx.onCall(() => {
      const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
      const ring: Array<{ i: number; s: string }> = new Array(50_000);
      let largest = newSpace();
      for (let i = 0; i < 3_000_000; i++) {
        ring[i % ring.length] = { i, s: 'x' + i };
        if (i % 10_000 === 0) largest = Math.max(largest, newSpace());
      }
      return { largest, ring: ring.length };
    });
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  },
});
