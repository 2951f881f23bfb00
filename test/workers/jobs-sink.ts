/**
 * Consumes its queues for test/jobs.test.ts:
 *   sink         synchronous handler: inserts into public.sink_rows, then throws / returns a
 *                promise when the payload asks (those inserts must roll back)
 *   sink.patient synchronous, a backoff of a minute (a failed job waits; retry() runs it now)
 *   sink.async   async handler: records each run in public.async_runs (committed at once), then
 *                rejects or leaves the process (exit 1) when the payload asks
 *   sink.mail    async handler: POSTs the payload to a URL (the test's HTTP server), throws on
 *                an answer that is not 2xx
 * and answers calls that exercise ctx.jobs / ctx.enqueue from inside the worker.
 */
import { defineWorker, type Job } from 'pg-node-worker';

interface Op {
  n: number;
  /** throw an Error on attempts up to this one */
  throwUntil?: number;
  /** throw a string, not an Error */
  throwString?: boolean;
  /** return a promise from the synchronous handler */
  promise?: boolean;
  /** async: leave the process on the first attempt, after recording the run */
  exitFirst?: boolean;
}

type Call =
  | { op: 'jobs'; queue: string; options?: Record<string, unknown> }
  | { op: 'enqueue-rollback'; n: number }
  | { op: 'enqueue'; queue: string; n: number };

export default defineWorker({
  name: 'sink',
  searchPath: ['public'],
  restart: 1,
  callers: ['sink_callers'],
  async main(ctx) {
    // the test creates the extension after the server started
    while (ctx.sql`SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_node_worker'`.length === 0) await ctx.sleep(50);
    const sync = (job: Job<Op>) => {
      const p = job.payload;
      ctx.sql`INSERT INTO public.sink_rows (n, attempt, queue) VALUES (${p.n}, ${job.attempts}, ${job.queue})`;
      if (p.throwString) throw `plain ${p.n}`;
      if (p.throwUntil !== undefined && job.attempts <= p.throwUntil) throw new Error(`boom ${p.n} attempt ${job.attempts}`);
      if (p.promise) return Promise.resolve(p.n);
      return undefined;
    };
    ctx.jobs<Op>('sink', sync, { backoffMs: 20 });
    ctx.jobs<Op>('sink.patient', sync, { backoffMs: 60_000 });
    ctx.jobs<Op>(
      'sink.async',
      async (job) => {
        const p = job.payload;
        ctx.sql`INSERT INTO public.async_runs (n, attempt, pid) VALUES (${p.n}, ${job.attempts}, ${process.pid})`;
        await new Promise((r) => setTimeout(r, 5));
        if (p.exitFirst && job.attempts === 1) process.exit(1);
        if (p.throwUntil !== undefined && job.attempts <= p.throwUntil) throw new Error(`async boom ${p.n}`);
      },
      { concurrency: 4, leaseMs: 1500, backoffMs: 20 },
    );

    // an email outbox: POST each mail to the service; a failed answer is retried
    ctx.jobs<{ url: string; to: string }>(
      'sink.mail',
      async (job) => {
        const res = await fetch(job.payload.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `mail-${job.id}` },
          body: JSON.stringify({ to: job.payload.to }),
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) throw new Error(`mail service answered ${res.status}`);
      },
      { concurrency: 2, backoffMs: 20 },
    );

    ctx.onCall((payload) => {
      const c = payload as Call;
      try {
        if (c.op === 'jobs') {
          const stop = ctx.jobs(c.queue, () => undefined, c.options as never);
          stop();
          return 'ok';
        }
        if (c.op === 'enqueue-rollback') {
          try {
            ctx.transaction(() => {
              ctx.enqueue('sink', { n: c.n });
              throw new Error('roll back');
            });
          } catch {
            // rolled back, with the job
          }
          return String(ctx.enqueue('sink', { n: c.n + 1 }));
        }
        return String(ctx.enqueue(c.queue, { n: c.n }));
      } catch (e) {
        const err = e as Error & { code?: string };
        return { name: err.name, code: err.code ?? null, message: err.message };
      }
    });
    ctx.log.info('sink ready');
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  },
});
