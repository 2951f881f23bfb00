/*-------------------------------------------------------------------------
 *
 * manifest_parse.h
 *	  The rules of a worker manifest (manifest_parse.c), for manifest.c,
 *	  which reads the file.  pgnw_valid_worker_name() is in
 *	  pg_node_worker.h.  Nothing here ereports.
 *
 * extension/manifest_parse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_MANIFEST_PARSE_H
#define PGNW_MANIFEST_PARSE_H

#include "pg_node_worker.h"

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

/* Size of a failure reason, including the terminating NUL */
#define PGNW_REASON_SIZE 512

/* a reason formatted into errbuf (PGNW_REASON_SIZE bytes); always false */
extern bool pgnw_manifest_fail(char *errbuf, const char *fmt,...) pg_attribute_printf(2, 3);

/*
 * The manifest text json (len bytes, not NUL-terminated, of the file of
 * worker expected_name in directory dir) into *out; false with a reason in
 * errbuf when it is not a valid manifest.
 */
extern bool pgnw_manifest_parse(char *json, size_t len, const char *dir,
								const char *expected_name, PgnwManifest *out,
								char *errbuf);

#pragma GCC visibility pop

#endif							/* PGNW_MANIFEST_PARSE_H */
