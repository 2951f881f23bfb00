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
