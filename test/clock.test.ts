/**
 * A wall-clock step (NTP, a VM resumed from a snapshot) while calls are in
 * flight: call() deadlines run on the monotonic clock, so a step forward
 * does not time a call out early and a step back does not keep a caller
 * waiting past its timeout.  The server runs under libfaketime, whose offset
 * file this test rewrites; the monotonic clock is left alone
 * (FAKETIME_DONT_FAKE_MONOTONIC).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, sleep, waitFor } from './helpers/cluster';

/** Debian's libfaketime, in /usr/lib/<multiarch>/faketime */
const FAKETIME_LIB = ['', ...fs.readdirSync('/usr/lib')]
  .map((d) => path.join('/usr/lib', d, 'faketime/libfaketimeMT.so.1'))
  .find((p) => fs.existsSync(p));

let cluster: Cluster;
let offsetFile: string;

/**
 * Steps the server's wall clock to `offset` from real time ("+1h", "-1h", "+0"). The file is
 * replaced by a rename: libfaketime reads it on every clock call, and a half-written one makes
 * it exit the process.
 */
const stepClock = (offset: string) => {
  fs.writeFileSync(offsetFile + '.new', offset + '\n', { mode: 0o644 });
  fs.renameSync(offsetFile + '.new', offsetFile);
};

const call = async (payload: unknown, timeoutMs: number) =>
  (await cluster.query<{ r: any }>('SELECT node_worker.call($1, $2::jsonb, $3) AS r', ['svc', JSON.stringify(payload), timeoutMs]))[0].r;

beforeAll(async () => {
  if (!FAKETIME_LIB) throw new Error('libfaketime is not installed (make deps installs it: apt-get install libfaketime)');
  const dir = fs.mkdtempSync('/tmp/pgnw-clock-');
  fs.chmodSync(dir, 0o755);
  offsetFile = path.join(dir, 'offset');
  stepClock('+0');
  cluster = await Cluster.create({
    env: {
      LD_PRELOAD: FAKETIME_LIB,
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
  });
  await cluster.deployFile('messaging-svc.ts');
  await cluster.start();
  await cluster.query('CREATE EXTENSION pg_node_worker');
  await waitFor('svc to serve calls', async () => (await call({ op: 'echo', value: 1 }, 5000).catch(() => null)) !== null, 30000);
}, 90000);

afterAll(async () => {
  if (offsetFile) stepClock('+0');
  await cluster?.destroy();
  if (offsetFile) fs.rmSync(path.dirname(offsetFile), { recursive: true, force: true });
});

describe('a wall-clock step during a call', () => {
  it('is seen by the server (the test harness works)', async () => {
    stepClock('+1h');
    try {
      await waitFor('the server clock to move an hour ahead', async () => {
        const [{ ahead }] = await cluster.query<{ ahead: number }>('SELECT extract(epoch FROM clock_timestamp()) - $1::float8 AS ahead', [Date.now() / 1000]);
        return ahead > 3000;
      }, 5000);
    } finally {
      stepClock('+0');
    }
  });

  it('forward by an hour does not time out a call that has time left', async () => {
    const pending = call({ op: 'slow', ms: 1500 }, 6000);
    await sleep(300);
    stepClock('+1h');
    try {
      expect(await pending).toEqual({ slept: 1500 });
    } finally {
      stepClock('+0');
    }
  });

  it('back by an hour does not keep the caller waiting past its timeout', async () => {
    const t0 = performance.now();
    const pending = call({ op: 'slow', ms: 4000 }, 1000).then(
      () => null,
      (e) => e,
    );
    await sleep(200);
    stepClock('-1h');
    try {
      const e = await pending;
      expect(e).toMatchObject({ code: '57014' });
      expect(e.message).toMatch(/timed out after 1000 ms/);
      // an hour late would be the wall clock's answer; the monotonic one is about a second
      expect(performance.now() - t0).toBeLessThan(30000);
    } finally {
      stepClock('+0');
    }
  }, 60000);

  it('leaves the worker serving calls', async () => {
    expect(await call({ op: 'echo', value: 'after' }, 5000)).toMatchObject({ got: 'after' });
  });
});
