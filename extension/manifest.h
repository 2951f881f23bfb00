/*-------------------------------------------------------------------------
 *
 * manifest.h
 *	  The worker directory and the manifests in it, for the other modules of
 *	  pg_node_worker.so.  manifest.c calls only manifest_parse.c.
 *
 * The manifest reader itself (PgnwManifest, pgnw_read_manifest(),
 * pgnw_manifest_path(), pgnw_valid_worker_name()) is in pg_node_worker.h,
 * because the runtime uses it too.
 *
 * extension/manifest.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_MANIFEST_H
#define PGNW_MANIFEST_H

#include "utils/guc.h"

#include "pg_node_worker.h"

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

/* node_worker.directory as set */
extern char *pgnw_directory_guc;

/* check hook of node_worker.directory: not empty, room for file names in it */
extern bool pgnw_manifest_check_directory(char **newval, void **extra, GucSource source);

/*
 * Absolute path of the worker directory (a relative setting is relative to
 * DataDir).  Never NULL; the result points to a static buffer.
 */
extern const char *pgnw_directory(void);

/*
 * The names of the deployed manifests: every "<name>.json" in the worker
 * directory, without ".json", sorted (palloc'd; NULL and *n = 0 when there
 * are none).  A name is the file's, not necessarily a valid worker name.
 */
extern char **pgnw_list_manifests(int *n);

/*
 * The SHA-256 of the file at path, as lower-case hex into hex[65].  False
 * when the file cannot be opened; ERROR when reading it fails.
 */
extern bool pgnw_manifest_file_sha256(const char *path, char *hex);

#pragma GCC visibility pop

#endif							/* PGNW_MANIFEST_H */
