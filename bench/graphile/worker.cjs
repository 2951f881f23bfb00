/**
 * The graphile-worker side of bench/jobs.ts: an external Node process (spawned by the bench with
 * the bench's own node, an IPC channel to it) running graphile-worker (the exact version pinned in
 * this directory's package.json) with concurrency 4 against the bench's throwaway cluster.
 *
 * argv[2]: the connection string (unix socket of the cluster, user postgres).
 * Tasks:
 *   - noop: does nothing. Each completed noop job counts; when the count reaches the target the
 *     bench set ({ cmd: 'expect', n }), the process reports { ev: 'drained', at } where `at` is the
 *     wall clock (ms, fractional) at that job's 'job:complete' event, i.e. after graphile-worker's
 *     completion of the last job committed.
 *   - lat: records the wall clock (ms, fractional: performance.timeOrigin + performance.now()) at
 *     the start of the task function, by job id; { cmd: 'lat' } answers { ev: 'lat', starts }.
 * Per-job success lines are off (NO_LOG_SUCCESS, set by the bench); warnings and errors go to
 * stderr. The process exits when the bench disconnects or on { cmd: 'stop' }.
 *
 * Plain CommonJS, not TypeScript: bench/graphile/node_modules exists only after
 * `npm ci --prefix bench/graphile`, and `npm run typecheck` must not depend on it.
 */
'use strict';
const { run, Logger } = require('graphile-worker');

const connectionString = process.argv[2];
const wallMs = () => performance.timeOrigin + performance.now();

const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

let target = Infinity;
let completed = 0;
const latStarts = {};

function send(msg) {
  if (process.connected) process.send(msg);
}

async function main() {
  const runner = await run(
    {
      connectionString,
      concurrency: 4,
      noHandleSignals: true,
      logger,
      taskList: {
        noop: async () => undefined,
        lat: async (_payload, helpers) => {
          latStarts[helpers.job.id] = wallMs();
        },
      },
    },
    undefined,
    [], // no cron items: graphile-worker would otherwise look for a crontab file
  );
  runner.events.on('job:complete', ({ job, error }) => {
    if (job.task_identifier !== 'noop' || error) return;
    completed++;
    if (completed === target) send({ ev: 'drained', at: wallMs(), n: completed });
  });
  process.on('message', (m) => {
    if (m.cmd === 'expect') {
      completed = 0;
      target = m.n;
      send({ ev: 'expecting', n: m.n });
    } else if (m.cmd === 'lat') {
      send({ ev: 'lat', starts: latStarts });
    } else if (m.cmd === 'stop') {
      runner.stop().then(() => process.exit(0), () => process.exit(1));
    }
  });
  process.on('disconnect', () => {
    runner.stop().then(() => process.exit(0), () => process.exit(1));
  });
  send({ ev: 'ready' });
  await runner.promise;
}

main().catch((err) => {
  process.stderr.write(`graphile-worker process: ${(err && err.stack) || err}\n`);
  process.exit(1);
});
