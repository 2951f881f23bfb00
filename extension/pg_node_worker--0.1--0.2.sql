/* extension/pg_node_worker--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_node_worker UPDATE TO '0.2'" to load this file. \quit

-- Who may run and stop workers: superusers, and members of node_worker_admin.
-- Roles are cluster-wide: another database's CREATE EXTENSION may have made it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'node_worker_admin') THEN
    CREATE ROLE node_worker_admin NOLOGIN;
  END IF;
END
$$;

-- Starts a dynamic worker from a deployed bundle; returns its pid once it runs.
CREATE FUNCTION @extschema@.launch(name text, args jsonb DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'node_worker_launch'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- Stops every process of a worker (SIGTERM, grace period, then forced) and
-- keeps it stopped until restart() or a server restart.
CREATE FUNCTION @extschema@.stop(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'node_worker_stop'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Stops the worker and starts it again with its current bundle; returns the new pid.
CREATE FUNCTION @extschema@.restart(name text)
RETURNS integer
AS 'MODULE_PATHNAME', 'node_worker_restart'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.worker_status(
    OUT name text, OUT kind text, OUT pid integer, OUT state text,
    OUT database text, OUT role text, OUT started_at timestamptz,
    OUT restarts integer, OUT last_exit_at timestamptz, OUT last_error text,
    OUT last_sqlstate text, OUT bundle_sha256 text, OUT deployed_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'node_worker_workers'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- One row per deployed or running worker.
CREATE VIEW @extschema@.workers AS
  SELECT * FROM @extschema@.worker_status();

REVOKE ALL ON FUNCTION @extschema@.launch(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.stop(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.restart(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.worker_status() FROM PUBLIC;
REVOKE ALL ON @extschema@.workers FROM PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO node_worker_admin;
GRANT EXECUTE ON FUNCTION @extschema@.launch(text, jsonb) TO node_worker_admin;
GRANT EXECUTE ON FUNCTION @extschema@.stop(text) TO node_worker_admin;
GRANT EXECUTE ON FUNCTION @extschema@.restart(text) TO node_worker_admin;
GRANT EXECUTE ON FUNCTION @extschema@.worker_status() TO node_worker_admin;
GRANT SELECT ON @extschema@.workers TO node_worker_admin;
