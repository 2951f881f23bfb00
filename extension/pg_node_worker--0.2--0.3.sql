/* extension/pg_node_worker--0.2--0.3.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_node_worker UPDATE TO '0.3'" to load this file. \quit

-- Calls the worker's ctx.onCall handler with payload and returns its result.
CREATE FUNCTION @extschema@.call(worker text, payload jsonb, timeout_ms integer DEFAULT 5000)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'node_worker_call'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- Queues payload for the worker's ctx.onMessage / ctx.messages(), delivered
-- only if (and when) the calling transaction commits, in commit order.
CREATE FUNCTION @extschema@.notify(worker text, payload jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'node_worker_notify'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

-- Sets the worker's latch: a pending ctx.sleep() resolves early with 'wake'.
CREATE FUNCTION @extschema@.wake(worker text)
RETURNS void
AS 'MODULE_PATHNAME', 'node_worker_wake'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Whether a role may talk to a worker is checked inside these functions
-- (superuser, node_worker_admin, or the worker's callers list): they are
-- executable by PUBLIC, and usable only with USAGE on the schema.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;
