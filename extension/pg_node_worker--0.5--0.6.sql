/* extension/pg_node_worker--0.5--0.6.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_node_worker UPDATE TO '0.6'" to load this file. \quit

-- launch() takes the database the new worker connects to (NULL: the one it was deployed with).
-- A third argument with a default cannot be added in place, so the function is made anew; any
-- EXECUTE granted on the old one beyond node_worker_admin has to be granted again.
DROP FUNCTION @extschema@.launch(text, jsonb);

CREATE FUNCTION @extschema@.launch(name text, args jsonb DEFAULT NULL, database text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'node_worker_launch'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION @extschema@.launch(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.launch(text, jsonb, text) TO node_worker_admin;
