/* extension/pg_node_worker--0.4--0.5.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_node_worker UPDATE TO '0.5'" to load this file. \quit

-- node_worker_admin may launch, stop and restart workers and read their state.  A role of that
-- name made by someone else before the extension (a CREATEROLE user who can log in as it, or
-- granted it to themselves) must not be adopted: such a role is refused here, also when an
-- earlier script of this installation has just taken it over.  A role the extension made (in
-- this or another database) is NOLOGIN with no attributes, and only superusers granted it.
DO $$
DECLARE
  admin pg_authid%ROWTYPE;
BEGIN
  SELECT * INTO admin FROM pg_authid WHERE rolname = 'node_worker_admin';
  IF admin.rolcanlogin OR admin.rolsuper OR admin.rolcreaterole OR admin.rolcreatedb
     OR admin.rolreplication OR admin.rolbypassrls OR admin.rolpassword IS NOT NULL THEN
    RAISE EXCEPTION 'role "node_worker_admin" already exists with LOGIN, a password or other attributes, so pg_node_worker did not create it'
      USING ERRCODE = 'duplicate_object',
            HINT = 'Drop that role (or ALTER ROLE node_worker_admin NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD NULL after checking who made it), then run the command again.';
  END IF;
  IF EXISTS (SELECT 1
               FROM pg_auth_members m
               LEFT JOIN pg_authid g ON g.oid = m.grantor
               JOIN pg_authid u ON u.oid = m.member
              WHERE m.roleid = admin.oid
                AND (NOT coalesce(g.rolsuper, false) OR (m.admin_option AND NOT u.rolsuper))) THEN
    RAISE EXCEPTION 'role "node_worker_admin" already has members that no superuser granted it, so pg_node_worker did not create it'
      USING ERRCODE = 'duplicate_object',
            HINT = 'See SELECT member::regrole, grantor::regrole, admin_option FROM pg_auth_members WHERE roleid = ''node_worker_admin''::regrole; revoke those memberships (or drop the role), then run the command again.';
  END IF;
END
$$;

-- worker_status() also returns each row's slot (NULL for a deployed worker that has none), so
-- that the view can show the state of the worker's inbox next to it.
DROP VIEW @extschema@.workers;
DROP FUNCTION @extschema@.worker_status();

CREATE FUNCTION @extschema@.worker_status(
    OUT name text, OUT kind text, OUT pid integer, OUT state text,
    OUT database text, OUT role text, OUT started_at timestamptz,
    OUT restarts integer, OUT last_exit_at timestamptz, OUT last_error text,
    OUT last_sqlstate text, OUT bundle_sha256 text, OUT deployed_at timestamptz,
    OUT slot integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'node_worker_workers'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Per slot in use: notifications not handled yet, the bytes its inbox holds, and committed
-- notifications dropped unhandled (delivered to processes that each exited before finishing them).
CREATE FUNCTION @extschema@.inbox_status(
    OUT slot integer, OUT pending integer, OUT bytes bigint, OUT lost bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'node_worker_inboxes'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- One row per deployed or running worker.
CREATE VIEW @extschema@.workers AS
  SELECT w.name, w.kind, w.pid, w.state, w.database, w.role, w.started_at, w.restarts,
         w.last_exit_at, w.last_error, w.last_sqlstate, w.bundle_sha256, w.deployed_at,
         coalesce(i.pending, 0) AS messages_pending,
         coalesce(i.lost, 0) AS messages_lost
    FROM @extschema@.worker_status() w
    LEFT JOIN @extschema@.inbox_status() i ON i.slot = w.slot;

REVOKE ALL ON FUNCTION @extschema@.worker_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.inbox_status() FROM PUBLIC;
REVOKE ALL ON @extschema@.workers FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.worker_status() TO node_worker_admin;
GRANT EXECUTE ON FUNCTION @extschema@.inbox_status() TO node_worker_admin;
GRANT SELECT ON @extschema@.workers TO node_worker_admin;
