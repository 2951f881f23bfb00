/* extension/pg_node_worker--0.6--0.7.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_node_worker UPDATE TO '0.7'" to load this file. \quit

-- ===== schedules (ctx.schedule) =====================================================================
--
-- One row per run of a worker's schedule (src/runtime/schedule.ts). The row is inserted before the
-- run, in a transaction of its own, and is unique per (worker, schedule, slot): a slot is never run
-- twice, not after a restart and not by two instances of one worker. WAL-logged, so backups and
-- replicas have it (a hot standby reads it but cannot write it: runs there are only logged).
--
-- Writes go only through the SECURITY DEFINER functions below, and those serve only node_worker
-- background workers (backend_type, which no client session can change), each for the worker name
-- it runs as (its application_name): a login role cannot forge or hide runs, nor claim a slot to
-- keep a worker from running it. node_worker_admin reads; the extension's owner may change rows.

CREATE TABLE @extschema@.schedule_runs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  worker text NOT NULL,
  schedule text NOT NULL,
  slot timestamptz NOT NULL,
  pid integer NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  outcome text NOT NULL CHECK (outcome IN ('running', 'ok', 'error', 'interrupted')),
  error text,
  UNIQUE (worker, schedule, slot)
);
CREATE INDEX schedule_runs_running ON @extschema@.schedule_runs (worker, schedule) WHERE outcome = 'running';

REVOKE ALL ON TABLE @extschema@.schedule_runs FROM PUBLIC;
GRANT SELECT ON TABLE @extschema@.schedule_runs TO node_worker_admin;

-- The worker the calling backend is, or 42501 for anything but a node_worker background worker.
CREATE FUNCTION @extschema@.schedule_caller()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF (SELECT a.backend_type FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a) IS DISTINCT FROM 'node_worker' THEN
    RAISE EXCEPTION 'only a pg_node_worker worker may record its schedule runs'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN pg_catalog.current_setting('application_name');
END
$$;

-- Claims a slot for the calling worker: the new run's id, or NULL when that slot or a later one
-- of the schedule is already claimed. Runs of the schedule left 'running' by processes that are
-- gone become 'interrupted'. Keeps the newest 1000 runs of each schedule.
CREATE FUNCTION @extschema@.schedule_claim(text, timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  w text := @extschema@.schedule_caller();
  claimed bigint;
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'schedule and slot must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  UPDATE @extschema@.schedule_runs r SET outcome = 'interrupted'
   WHERE r.worker = w AND r.schedule = $1 AND r.outcome = 'running'
     AND r.pid <> pg_catalog.pg_backend_pid()
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(r.pid) a WHERE a.backend_type = 'node_worker');
  INSERT INTO @extschema@.schedule_runs (worker, schedule, slot, pid, started_at, outcome)
  SELECT w, $1, $2, pg_catalog.pg_backend_pid(), pg_catalog.clock_timestamp(), 'running'
   WHERE NOT EXISTS (SELECT 1 FROM @extschema@.schedule_runs r WHERE r.worker = w AND r.schedule = $1 AND r.slot >= $2)
  ON CONFLICT (worker, schedule, slot) DO NOTHING
  RETURNING id INTO claimed;
  IF claimed % 100 = 0 THEN
    DELETE FROM @extschema@.schedule_runs r
     WHERE r.worker = w AND r.schedule = $1
       AND r.slot < (SELECT k.slot FROM @extschema@.schedule_runs k
                      WHERE k.worker = w AND k.schedule = $1
                      ORDER BY k.slot DESC OFFSET 999 LIMIT 1);
  END IF;
  RETURN claimed;
END
$$;

-- Records the end of a run the calling process claimed: outcome 'ok' or 'error', and the error's text.
CREATE FUNCTION @extschema@.schedule_finish(bigint, text, text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  w text := @extschema@.schedule_caller();
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('ok', 'error') THEN
    RAISE EXCEPTION 'outcome must be ''ok'' or ''error''' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE @extschema@.schedule_runs r
     SET finished_at = pg_catalog.clock_timestamp(), outcome = $2, error = $3
   WHERE r.id = $1 AND r.worker = w AND r.pid = pg_catalog.pg_backend_pid() AND r.outcome = 'running';
  RETURN FOUND;
END
$$;

-- The latest slot the calling worker claimed for a schedule (NULL: never run).
CREATE FUNCTION @extschema@.schedule_last(text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  w text := @extschema@.schedule_caller();
BEGIN
  RETURN (SELECT max(r.slot) FROM @extschema@.schedule_runs r WHERE r.worker = w AND r.schedule = $1);
END
$$;

-- Reachable by every worker's role (USAGE on the schema is PUBLIC's already); each function
-- refuses callers that are not node_worker background workers.
REVOKE ALL ON FUNCTION @extschema@.schedule_caller() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.schedule_claim(text, timestamptz) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.schedule_finish(bigint, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.schedule_last(text) TO PUBLIC;

-- ===== end of schedules ============================================================================
