/* extension/pg_node_worker--0.7--0.8.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_node_worker UPDATE TO '0.8'" to load this file. \quit

-- ===== schedules (ctx.schedule) ==============================================================
--
-- The worker a schedule run belongs to is the node_worker slot the calling process runs as
-- (extension/schedules.c), not its application_name, which the worker's own code may SET to
-- another worker's name.  Retention follows node_worker.schedule_runs_keep.  schedule_claim()
-- no longer waits behind another process's claim of the same slot that has not committed yet
-- (a synchronous schedule function runs inside its claiming transaction, see
-- src/runtime/schedule.ts): such a slot counts as taken.  pg_dump now includes the runs.

-- The worker the calling process is (its node_worker slot), or 42501 for any other process.
CREATE OR REPLACE FUNCTION @extschema@.schedule_caller()
RETURNS text
AS 'MODULE_PATHNAME', 'node_worker_schedule_caller'
LANGUAGE C STABLE PARALLEL UNSAFE;

-- The insert of schedule_claim(): the new run's id, or NULL when the slot (or a later one) is
-- claimed.  A claim of the same slot by a transaction still in progress counts as taken: that
-- transaction runs the slot (and records its end, or rolls back with a crash), so waiting for it
-- would only block this process for as long as a synchronous schedule function runs.
CREATE FUNCTION @extschema@._schedule_insert(w text, s text, at timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '50ms'
AS $$
DECLARE
  claimed bigint;
BEGIN
  INSERT INTO @extschema@.schedule_runs (worker, schedule, slot, pid, started_at, outcome)
  SELECT w, s, at, pg_catalog.pg_backend_pid(), pg_catalog.clock_timestamp(), 'running'
   WHERE NOT EXISTS (SELECT 1 FROM @extschema@.schedule_runs r WHERE r.worker = w AND r.schedule = s AND r.slot >= at)
  ON CONFLICT (worker, schedule, slot) DO NOTHING
  RETURNING id INTO claimed;
  RETURN claimed;
EXCEPTION
  WHEN lock_not_available THEN
    RETURN NULL;
END
$$;

-- Claims a slot for the calling worker: the new run's id, or NULL when that slot or a later one
-- of the schedule is already claimed (also by a transaction still in progress).  Runs of the
-- schedule left 'running' by processes that are gone become 'interrupted'.  Keeps the newest
-- node_worker.schedule_runs_keep runs of each schedule.
CREATE OR REPLACE FUNCTION @extschema@.schedule_claim(text, timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  w text := @extschema@.schedule_caller();
  -- missing only while the server still runs a library older than this script
  keep integer := greatest(1, coalesce(nullif(pg_catalog.current_setting('node_worker.schedule_runs_keep', true), '')::integer, 1000));
  claimed bigint;
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'schedule and slot must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  -- rows another process is writing right now are left for a later claim (SKIP LOCKED)
  UPDATE @extschema@.schedule_runs r SET outcome = 'interrupted'
   WHERE r.id IN (SELECT i.id FROM @extschema@.schedule_runs i
                   WHERE i.worker = w AND i.schedule = $1 AND i.outcome = 'running'
                     AND i.pid <> pg_catalog.pg_backend_pid()
                     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(i.pid) a WHERE a.backend_type = 'node_worker')
                   FOR UPDATE SKIP LOCKED);
  claimed := @extschema@._schedule_insert(w, $1, $2);
  IF claimed IS NULL THEN
    RETURN NULL;
  END IF;
  -- the newest `keep` runs stay (this one among them)
  DELETE FROM @extschema@.schedule_runs r
   WHERE r.id IN (SELECT d.id FROM @extschema@.schedule_runs d
                   WHERE d.worker = w AND d.schedule = $1
                     AND d.slot < (SELECT k.slot FROM @extschema@.schedule_runs k
                                    WHERE k.worker = w AND k.schedule = $1
                                    ORDER BY k.slot DESC OFFSET keep - 1 LIMIT 1)
                   FOR UPDATE SKIP LOCKED);
  RETURN claimed;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._schedule_insert(text, text, timestamptz) FROM PUBLIC;

-- pg_dump includes the runs (and where the identity goes on), as it does node_worker.job_store
SELECT pg_catalog.pg_extension_config_dump('@extschema@.schedule_runs', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.schedule_runs', 'id'), '');

-- ===== end of schedules =====================================================================

-- ===== jobs: claims and pruning ===============================================================
--
-- An async consumer's claim took its due pending jobs and its expired leases in one query with
-- OR between the two states: no index gives that order, so every claim sorted all due jobs of the
-- queue (a drain of 20,000 jobs spent most of its time there).  It now takes the pending ones in
-- index order first, and expired leases only for the room left, as the synchronous claim does.
-- _jobs_due() also answers when the queue's oldest finished job is due for pruning, so that an
-- idle queue's finished jobs are pruned once node_worker.jobs_keep_done_s passed, not only at its
-- next activity; a prune that found its 10,000-row limit answers -1 (prune again at once, also
-- while the queue is busy) so that a queue drained faster than 10,000 jobs a second stays bounded.

CREATE OR REPLACE FUNCTION @extschema@._jobs_claim(q text, n integer, lease_ms integer)
RETURNS TABLE (id bigint, payload jsonb, attempts integer, run_at timestamptz, job_key text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  got integer;
BEGIN
  PERFORM @extschema@._jobs_consumer(q);
  UPDATE @extschema@.job_store j
     SET state = 'failed', finished_at = now(), locked_until = NULL,
         last_error = 'the lease expired (the worker stopped or died while the handler ran) after the last attempt'
   WHERE j.queue = q AND j.state = 'running' AND j.locked_until <= now() AND j.attempts >= j.max_attempts;
  IF lease_ms IS NULL THEN
    RETURN QUERY
      SELECT j.id, j.payload, j.attempts + 1, j.run_at, j.job_key
        FROM @extschema@.job_store j
       WHERE j.queue = q AND j.state = 'pending' AND j.run_at <= now()
       ORDER BY j.priority DESC, j.run_at, j.id
       LIMIT n
         FOR UPDATE SKIP LOCKED;
    GET DIAGNOSTICS got = ROW_COUNT;
    IF got < n THEN
      RETURN QUERY
        SELECT j.id, j.payload, j.attempts + 1, j.run_at, j.job_key
          FROM @extschema@.job_store j
         WHERE j.queue = q AND j.state = 'running' AND j.locked_until <= now()
         LIMIT n - got
           FOR UPDATE SKIP LOCKED;
    END IF;
  ELSE
    RETURN QUERY
      UPDATE @extschema@.job_store j
         SET state = 'running', attempts = j.attempts + 1,
             locked_until = now() + make_interval(secs => lease_ms / 1000.0)
        FROM (SELECT c.id FROM @extschema@.job_store c
               WHERE c.queue = q AND c.state = 'pending' AND c.run_at <= now()
               ORDER BY c.priority DESC, c.run_at, c.id
               LIMIT n
                 FOR UPDATE SKIP LOCKED) c
       WHERE j.id = c.id
      RETURNING j.id, j.payload, j.attempts, j.run_at, j.job_key;
    GET DIAGNOSTICS got = ROW_COUNT;
    IF got < n THEN
      RETURN QUERY
        UPDATE @extschema@.job_store j
           SET state = 'running', attempts = j.attempts + 1,
               locked_until = now() + make_interval(secs => lease_ms / 1000.0)
          FROM (SELECT c.id FROM @extschema@.job_store c
                 WHERE c.queue = q AND c.state = 'running' AND c.locked_until <= now()
                 LIMIT n - got
                   FOR UPDATE SKIP LOCKED) c
         WHERE j.id = c.id
        RETURNING j.id, j.payload, j.attempts, j.run_at, j.job_key;
    END IF;
  END IF;
END
$$;

-- Prunes the queue's finished jobs kept past node_worker.jobs_keep_done_s (at most 10,000 a
-- call); then the milliseconds until the consumer should look again: the next pending job's
-- run_at, the next lease to expire, or the next finished job to prune, whichever comes first
-- (0: now); -1 when the prune found its limit (more to prune now); NULL: nothing to wait for.
CREATE OR REPLACE FUNCTION @extschema@._jobs_due(q text)
RETURNS double precision
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  keep interval := make_interval(secs => current_setting('node_worker.jobs_keep_done_s')::integer);
  pruned integer;
  next_at timestamptz;
BEGIN
  PERFORM @extschema@._jobs_consumer(q);
  DELETE FROM @extschema@.job_store
   WHERE id IN (SELECT d.id FROM @extschema@.job_store d
                 WHERE d.queue = q AND d.state = 'done' AND d.finished_at < now() - keep
                 LIMIT 10000);
  GET DIAGNOSTICS pruned = ROW_COUNT;
  IF pruned = 10000 THEN
    RETURN -1;
  END IF;
  SELECT least((SELECT min(p.run_at) FROM @extschema@.job_store p WHERE p.queue = q AND p.state = 'pending'),
               (SELECT min(r.locked_until) FROM @extschema@.job_store r WHERE r.queue = q AND r.state = 'running'),
               (SELECT min(d.finished_at) + keep FROM @extschema@.job_store d WHERE d.queue = q AND d.state = 'done'))
    INTO next_at;
  IF next_at IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN greatest(0, extract(epoch FROM next_at - clock_timestamp()) * 1000);
END
$$;

-- ===== end of jobs: claims and pruning ========================================================
