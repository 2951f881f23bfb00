/**
 * kill -9 of a worker while clients commit: the postmaster resets the cluster (as for any backend
 * killed by a signal), crash recovery keeps every acknowledged commit and makes none up, the
 * clients reconnect and the workers come back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, Cluster, sleep, waitFor } from './helpers/cluster';
import { ABORT, connect, logTime, seconds, TS } from './helpers/faults';

describe('kill -9 of a worker while 4 clients commit', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    // a worker that commits in a loop too, so the kill lands in the middle of its transactions
    await cluster.deployFile('faults-kill9-writer.ts');
    await cluster.deployTemplate('idle', 'bystander');
    await cluster.start();
    await cluster.query('CREATE TABLE commits (client int NOT NULL, n int NOT NULL, PRIMARY KEY (client, n))');
    await cluster.waitForLog(/writer: writer: writing as pid/);
  }, 60000);
  afterAll(async () => cluster?.destroy());

  it('the cluster resets and recovers; every acknowledged commit is there; the workers are back', async () => {
    const CLIENTS = 4;
    const writer = await cluster.waitForWorker('writer');
    const bystander = await cluster.waitForWorker('bystander');
    const pm = cluster.postmasterPid();
    const startTime = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    const checkpointer = await cluster.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");

    interface ClientRun {
      acked: number[];
      /** the commit was sent and no answer came: it may or may not have committed */
      uncertain: number[];
      errors: string[];
      ackedBeforeKill: number;
      /** seconds from the kill to this client's first error, and to its first commit after that */
      firstError: number | null;
      firstAckAfterError: number | null;
    }
    const state = { stop: false, killedAt: null as bigint | null };
    const committer = async (id: number): Promise<ClientRun> => {
      const run: ClientRun = { acked: [], uncertain: [], errors: [], ackedBeforeKill: 0, firstError: null, firstAckAfterError: null };
      let client: Awaited<ReturnType<typeof connect>> | null = null;
      let n = 0;
      while (!state.stop) {
        if (!client) {
          try {
            client = await connect(cluster);
          } catch (e) {
            if (state.killedAt !== null && run.firstError === null) run.firstError = seconds(state.killedAt);
            run.errors.push(`connect: ${(e as Error).message}`);
            await sleep(20);
            continue;
          }
        }
        n++;
        try {
          await client.query('INSERT INTO commits (client, n) VALUES ($1, $2)', [id, n]);
          run.acked.push(n);
          if (state.killedAt === null) run.ackedBeforeKill++;
          else if (run.firstError !== null && run.firstAckAfterError === null) run.firstAckAfterError = seconds(state.killedAt);
        } catch (e) {
          run.uncertain.push(n);
          if (state.killedAt !== null && run.firstError === null) run.firstError = seconds(state.killedAt);
          run.errors.push(`${(e as { code?: string }).code ?? '-'} ${(e as Error).message}`);
          await client.end().catch(() => undefined);
          client = null;
        }
      }
      await client?.end().catch(() => undefined);
      return run;
    };

    const runs = Array.from({ length: CLIENTS }, (_, i) => committer(i + 1));
    // let every client commit for a while, then kill the worker in the middle of it
    await sleep(1500);
    const from = cluster.log().length;
    state.killedAt = process.hrtime.bigint();
    process.kill(writer, 'SIGKILL');

    await cluster.waitForLog(/all server processes terminated; reinitializing/, 20000, from);
    await waitFor('the cluster to accept queries again', async () => {
      const c = await connect(cluster);
      try {
        return (await c.query('SELECT 1 AS ok')).rows[0].ok === 1;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, 30000, 20);
    const recovered = seconds(state.killedAt);
    // let the clients commit after the recovery too
    const newWriter = await cluster.waitForWorker('writer', 20000, writer);
    const workersBack = seconds(state.killedAt);
    const newBystander = await cluster.waitForWorker('bystander', 20000, bystander);
    await sleep(1500);
    state.stop = true;
    const results = await Promise.all(runs);

    const rows = await cluster.query<{ client: number; n: number }>('SELECT client, n FROM commits');
    const present = new Map<number, Set<number>>();
    for (const r of rows) {
      if (!present.has(r.client)) present.set(r.client, new Set());
      present.get(r.client)!.add(r.n);
    }
    let missing = 0;
    let acked = 0;
    let uncertainPresent = 0;
    let phantom = 0;
    results.forEach((r, i) => {
      const have = present.get(i + 1) ?? new Set<number>();
      acked += r.acked.length;
      const lost = r.acked.filter((n) => !have.has(n));
      missing += lost.length;
      expect(lost, `client ${i + 1}: acknowledged commits missing after the recovery`).toEqual([]);
      uncertainPresent += r.uncertain.filter((n) => have.has(n)).length;
      // nothing committed that the client did not send (every n it sent is acked or uncertain)
      const sent = new Set([...r.acked, ...r.uncertain]);
      phantom += [...have].filter((n) => !sent.has(n)).length;
    });
    const outages = results.map((r) => `${r.firstError?.toFixed(3)}-${r.firstAckAfterError?.toFixed(3)}`);
    const workerLine = cluster.log().slice(from).match(new RegExp(`^(${TS}) \\S+ \\[${newWriter}\\] LOG:  writer: writer: writing as pid`, 'm'));
    const killLine = cluster.log().slice(from).match(new RegExp(`^(${TS}) .*\\(PID ${writer}\\) was terminated by signal 9`, 'm'));
    console.log(
      `[kill -9 + 4 clients] ${acked} commits acknowledged (${results.map((r) => r.ackedBeforeKill).join('/')} before the kill, ` +
        `${results.map((r) => r.acked.length - r.ackedBeforeKill).join('/')} after), ${missing} missing, ${phantom} unexpected; ` +
        `${results.map((r) => r.uncertain.length).join('/')} in flight at the reset (${uncertainPresent} of them committed); ` +
        `errors per client ${results.map((r) => r.errors.length).join('/')}; ` +
        `each client's outage (s after the kill: first error - next commit) ${outages.join(', ')}; ` +
        `cluster answering after ${recovered.toFixed(3)} s, writer back (pid ${newWriter}) after ${workersBack.toFixed(3)} s` +
        (workerLine && killLine ? ` (its first JS line ${(logTime(workerLine[1]) - logTime(killLine[1])).toFixed(3)} s after the kill line)` : ''),
    );
    console.log(`[kill -9 + 4 clients] client errors seen (first of each): ${results.map((r) => r.errors[0]).join(' | ')}`);

    expect(missing).toBe(0);
    expect(phantom).toBe(0);
    for (const [i, r] of results.entries()) {
      expect(r.ackedBeforeKill, `client ${i + 1} committed before the kill`).toBeGreaterThan(10);
      // the reset closed every connection: each client saw it...
      expect(r.errors.length, `client ${i + 1} saw the reset`).toBeGreaterThan(0);
      // ...and committed again afterwards
      expect(r.acked.length - r.ackedBeforeKill, `client ${i + 1} committed after the recovery`).toBeGreaterThan(0);
    }
    const log = cluster.log().slice(from);
    expect(log).toMatch(new RegExp(`\\(PID ${writer}\\) was terminated by signal 9: Killed`));
    expect(log).toMatch(/all server processes terminated; reinitializing/);
    expect(log).not.toMatch(ABORT);
    // same postmaster, new worker processes
    expect(cluster.postmasterPid()).toBe(pm);
    expect(alive(pm)).toBe(true);
    expect(newWriter).not.toBe(writer);
    expect(newBystander).not.toBe(bystander);
    expect(alive(bystander)).toBe(false);
    const after = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    console.log(`[kill -9 + 4 clients] pg_postmaster_start_time ${startTime} -> ${after} (a reset keeps it: the checkpointer's pid tells)`);
    // every server process was replaced, the checkpointer included
    expect(checkpointer).toHaveLength(1);
    expect(await cluster.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")).not.toEqual(checkpointer);
    expect(recovered).toBeLessThan(10);
    // the writer's table is consistent after crash recovery (its last transaction is all or nothing)
    const w = await cluster.query<{ n: string }>('SELECT count(*) AS n FROM writer_rows');
    expect(Number(w[0].n) % 10).toBe(0);
  }, 90000);
});