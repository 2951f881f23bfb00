/**
 * The debugger: a worker named by node_worker.inspect_worker opens Node's inspector on
 * 127.0.0.1:node_worker.inspect_port; a real protocol client (the `ws` package) pauses it at
 * `debugger;`, evaluates in its frame, stops it at a breakpoint, steps and resumes it, while the
 * server, the other workers and a barrier (DROP DATABASE) go on; stopping it while it is paused
 * takes no longer than the shutdown grace period. A port that is taken fails the worker clearly.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, Cluster, sleep, waitFor } from './helpers/cluster';
import { CdpClient } from './helpers/inspector';

const GRACE_MS = 2000;
const INSPECT_PORT = 19229 + (process.pid % 500);

/** How many ticks the ticker worker has logged. */
function ticks(cluster: Cluster): number {
  return (cluster.log().match(/ticker: tick \d+/g) ?? []).length;
}

describe('the inspector of a worker', () => {
  let cluster: Cluster;
  let client: CdpClient | undefined;

  beforeAll(async () => {
    cluster = await Cluster.create({
      settings: {
        'node_worker.inspect_worker': "'inspected'",
        'node_worker.inspect_port': INSPECT_PORT,
        'node_worker.shutdown_grace_ms': GRACE_MS,
      },
    });
    await cluster.deployFile('inspect-paused.ts');
    await cluster.deployFile('inspect-ticker.ts');
    await cluster.start();
    await cluster.query('CREATE EXTENSION pg_node_worker');
    await cluster.query('CREATE DATABASE scratch');
  }, 60000);
  afterAll(async () => {
    client?.close();
    await cluster?.destroy();
  });

  it('listens on 127.0.0.1 only and logs its DevTools address; PostgreSQL keeps SIGUSR1', async () => {
    const pid = await cluster.waitForWorker('inspected');
    const [, url] = await cluster.waitForLog(/inspected: debugger listening on (ws:\/\/\S+) \(DevTools: devtools:\/\/\S+/);
    expect(url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${INSPECT_PORT}/[0-9a-f-]+$`));
    // not on another address of this host
    const other = net.connect({ host: '::1', port: INSPECT_PORT });
    const refused = await new Promise<boolean>((resolve) => {
      other.once('connect', () => resolve(false));
      other.once('error', () => resolve(true));
    });
    other.destroy();
    expect(refused).toBe(true);
    // a procsignal (SIGUSR1 to the worker) still reaches PostgreSQL's handler
    const from = cluster.log().length;
    await cluster.query('SELECT pg_log_backend_memory_contexts($1)', [pid]);
    await cluster.waitForLog(new RegExp(`\\[${pid}\\] LOG:  logging memory contexts of PID ${pid}`), 10000, from);
    // only the named worker has one
    expect(cluster.log()).not.toMatch(/ticker: debugger listening/);
  });

  it('pauses at debugger;, evaluates and sets locals in the frame, stops at a breakpoint, steps, resumes; the server and the other workers go on', async () => {
    client = await CdpClient.connect(INSPECT_PORT);
    await client.send('Runtime.enable');
    await client.send('Debugger.enable');
    const paused = await client.next('Debugger.paused');
    const frames = paused.params.callFrames as { callFrameId: string; functionName: string }[];
    const evaluated = await client.send('Debugger.evaluateOnCallFrame', {
      callFrameId: frames[0].callFrameId,
      expression: 'answer === turns * 2 ? ctx.worker.name + " at turn " + turns : "wrong frame"',
    });
    expect((evaluated.result as { value: unknown }).value).toMatch(/^inspected at turn \d+$/);

    // paused: its JavaScript waits, the server answers and the ticker ticks
    const before = ticks(cluster);
    await sleep(1000);
    expect(ticks(cluster) - before).toBeGreaterThanOrEqual(5);
    expect(await cluster.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    // a barrier every backend must absorb (DROP DATABASE) does not wait for the person at the debugger
    const t0 = Date.now();
    await cluster.query('DROP DATABASE scratch');
    expect(Date.now() - t0).toBeLessThan(2000);

    // a breakpoint on the line of `await ctx.sleep(100)`, in the bundle the worker runs
    type Location = { scriptId: string; lineNumber: number };
    const here = (frames[0] as unknown as { location: Location }).location;
    const source = String((await client.send('Debugger.getScriptSource', { scriptId: here.scriptId })).scriptSource);
    const sleepLine = source.split('\n').findIndex((l, i) => i > here.lineNumber && l.includes('await ctx.sleep(100)'));
    expect(sleepLine).toBeGreaterThan(here.lineNumber);
    const bp = await client.send('Debugger.setBreakpoint', { location: { scriptId: here.scriptId, lineNumber: sleepLine } });

    // change a local, resume: the check that reads it logs, then the breakpoint stops it
    await client.send('Debugger.evaluateOnCallFrame', { callFrameId: frames[0].callFrameId, expression: 'answer = -1' });
    const from = cluster.log().length;
    await client.send('Debugger.resume');
    const atBreakpoint = await client.next('Debugger.paused');
    expect(atBreakpoint.params.hitBreakpoints).toEqual([bp.breakpointId]);
    await cluster.waitForLog(/inspected: changed by the debugger: -1/, 10000, from);

    // step over the await: it stops again, on another line (the loop's condition or the next turn)
    await client.send('Debugger.removeBreakpoint', { breakpointId: bp.breakpointId });
    await client.send('Debugger.stepOver');
    const stepped = await client.next('Debugger.paused');
    const steppedTo = ((stepped.params.callFrames as { location: Location }[])[0]).location;
    expect(steppedTo.lineNumber).not.toBe(sleepLine);

    // resumed, the next turn stops at debugger; again
    await client.send('Debugger.resume');
    const again = await client.next('Debugger.paused');
    expect(again.params.reason).toBe('other');
  });

  it('stops within node_worker.shutdown_grace_ms while paused', async () => {
    const pid = await cluster.waitForWorker('inspected');
    const t0 = Date.now();
    await cluster.query("SELECT node_worker.stop('inspected')");
    await waitFor('the paused worker to exit', () => !alive(pid), GRACE_MS + 3000);
    expect(Date.now() - t0).toBeLessThan(GRACE_MS + 1500);
    // resumed and left as it would undebugged: main() saw ctx.signal, no JavaScript was cut off
    await cluster.waitForLog(/inspected: stopping after \d+ turns/);
    expect(cluster.log()).not.toMatch(/did not stop within node_worker.shutdown_grace_ms/);
    expect(cluster.log()).not.toMatch(/terminated by signal|server process .* was terminated/);
    expect(alive(cluster.postmasterPid())).toBe(true);
  }, 20000);
});

describe('an inspector port that is taken', () => {
  let cluster: Cluster;
  let squatter: net.Server;

  beforeAll(async () => {
    squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(INSPECT_PORT + 1, '127.0.0.1', resolve));
    cluster = await Cluster.create({
      settings: { 'node_worker.inspect_worker': "'inspected'", 'node_worker.inspect_port': INSPECT_PORT + 1, 'node_worker.max_failures': 100 },
    });
    await cluster.deployFile('inspect-paused.ts');
    await cluster.start();
    await cluster.query('CREATE EXTENSION pg_node_worker');
  }, 60000);
  afterAll(async () => {
    await cluster?.destroy();
    squatter?.close();
  });

  it('fails the worker with a clear error, or with inspect_optional starts it without the inspector', async () => {
    await cluster.waitForLog(
      new RegExp(`inspected: could not start the debugger: InspectorError: the inspector could not listen on 127\\.0\\.0\\.1:${INSPECT_PORT + 1} \\(.*\\)\\. Choose another node_worker\\.inspect_port`),
    );
    expect(cluster.log()).not.toMatch(/inspected: running/);
    const from = cluster.log().length;
    await cluster.query('ALTER SYSTEM SET node_worker.inspect_optional = on');
    await cluster.query('SELECT pg_reload_conf()');
    await cluster.waitForWorker('inspected', 30000);
    await cluster.waitForLog(/inspected: the inspector could not listen on .*; running without the inspector/, 30000, from);
    await cluster.waitForLog(/inspected: running/, 10000, from);
  }, 60000);
});
