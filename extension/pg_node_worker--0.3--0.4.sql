/* extension/pg_node_worker--0.3--0.4.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_node_worker UPDATE TO '0.4'" to load this file. \quit

-- The named shared memory regions workers opened with ctx.shared(name, bytes).
CREATE FUNCTION @extschema@.shared_region_list(OUT name text, OUT size bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'node_worker_shared_regions'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- One row per region: its name and size in bytes (regions live until the server stops).
CREATE VIEW @extschema@.shared_regions AS
  SELECT * FROM @extschema@.shared_region_list();

-- A copy of a region's bytes, for debugging (not atomic against workers writing it).
CREATE FUNCTION @extschema@.shared_read(name text, "offset" integer DEFAULT 0, length integer DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'node_worker_shared_read'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION @extschema@.shared_region_list() FROM PUBLIC;
REVOKE ALL ON @extschema@.shared_regions FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.shared_read(text, integer, integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.shared_region_list() TO node_worker_admin;
GRANT SELECT ON @extschema@.shared_regions TO node_worker_admin;
GRANT EXECUTE ON FUNCTION @extschema@.shared_read(text, integer, integer) TO node_worker_admin;
