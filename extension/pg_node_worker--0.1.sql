/* extension/pg_node_worker--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_node_worker" to load this file. \quit

-- The resolved worker directory (node_worker.directory made absolute).
CREATE FUNCTION @extschema@.directory()
RETURNS text
AS 'MODULE_PATHNAME', 'node_worker_directory'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

REVOKE ALL ON FUNCTION @extschema@.directory() FROM PUBLIC;
