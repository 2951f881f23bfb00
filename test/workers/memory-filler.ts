/** Fills memory with 1 MB Buffers, never catching, past its own bufferLimitMb of 64. */
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'filler',
  restart: 1,
  bufferLimitMb: 64,
  async main(ctx) {
    ctx.log.info('filling from pid ' + ctx.worker.pid);
    const keep: Buffer[] = [];
    for (;;) {
      keep.push(Buffer.alloc(1024 * 1024, 1));
      if (keep.length % 16 === 0) ctx.log.info('held ' + keep.length + ' MB');
    }
  },
});
