/**
 * Writes to process.stdout/stderr and console, then does what Node does for process.stderr on a
 * pipe: a libuv pipe handle on fd 2, which sets O_NONBLOCK on its open file description. Logs the
 * flags of its fd 2 afterwards.
 */
import * as fs from 'fs';
import * as net from 'net';
import { defineWorker } from 'pg-node-worker';

export default defineWorker({
  searchPath: ['public'],
  name: 'writer',
  restart: 'never',
  async main(ctx) {
    process.stdout.write('hz5c stdout line\n');
    process.stderr.write('hz5c stderr line\n');
    console.log('hz5c console.log');
    console.error('hz5c console.error');
    const raw = new net.Socket({ fd: 2, readable: false, writable: true });
    raw.unref();
    raw.write('hz5c raw pipe write\n');
    await ctx.sleep(100);
    const flags = /flags:\s+([0-7]+)/.exec(fs.readFileSync('/proc/self/fdinfo/2', 'utf8'))![1];
    ctx.log.info('fd 2 flags ' + flags);
    while (!ctx.signal.aborted) await ctx.sleep(60000);
  },
});
