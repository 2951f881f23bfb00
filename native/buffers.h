/*-------------------------------------------------------------------------
 *
 * buffers.h
 *		The buffer cache (ctx.buffers) and named shared regions (ctx.shared)
 *		as plain C for the N-API layer (buffers.cc, shared.cc); implemented
 *		in buffers_ops.c through the guard of guard.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_BUFFERS_H
#define PGNW_BUFFERS_H

#include <stddef.h>

#include "guard.h"

#ifdef __cplusplus
extern "C"
{
#endif

/*
 * Every valid buffer of shared_buffers, column by column: entry i of each
 * array describes one buffer.  The arrays are malloc'd with count entries
 * (NULL when count is 0); whoever takes one sets the pointer to NULL, and
 * pgnw_buffers_snapshot_free() frees the rest.
 */
typedef struct PgnwBufferSnapshot
{
	uint32_t	count;			/* valid buffers */
	uint32_t	total;			/* NBuffers */
	uint32_t   *database;
	uint32_t   *tablespace;
	uint32_t   *relfilenode;
	uint32_t   *block;
	uint8_t    *fork;
	uint8_t    *dirty;			/* 0/1 */
	uint8_t    *usage;			/* usage count, 0..BM_MAX_USAGE_COUNT */
} PgnwBufferSnapshot;

typedef struct PgnwBufferStats
{
	uint32_t	total;			/* NBuffers */
	uint32_t	used;			/* valid buffers */
	uint32_t	dirty;
	uint32_t	pinned;
	double		usage_average;	/* over the used buffers; 0 when none */
} PgnwBufferStats;

/*
 * A relation: by name (schema-qualified or resolved by search_path) when
 * name is not NULL, else by oid.  fork: "main", "fsm", "vm", "init"; NULL
 * means "main".
 */
typedef struct PgnwRelationRef
{
	const char *name;
	uint32_t	oid;
	const char *fork;
} PgnwRelationRef;

extern bool pgnw_buffers_snapshot(PgnwBufferSnapshot *out, PgnwError *err);
extern void pgnw_buffers_snapshot_free(PgnwBufferSnapshot *snap);
extern bool pgnw_buffers_stats(PgnwBufferStats *out, PgnwError *err);
/* the fork's size in blocks, and how many of its blocks are in shared_buffers */
extern bool pgnw_buffers_residency(const PgnwRelationRef *rel, int64_t *blocks, int64_t *cached,
								   PgnwError *err);
/* reads blocks first..last (has_first/has_last false: the whole fork) into shared_buffers */
extern bool pgnw_buffers_prewarm(const PgnwRelationRef *rel, bool has_first, int64_t first,
								 bool has_last, int64_t last, int64_t *done, PgnwError *err);
/* a malloc'd copy of one page (*len = BLCKSZ), taken under a share content lock */
extern bool pgnw_buffers_read_page(const PgnwRelationRef *rel, int64_t block, uint8_t **page,
								   size_t *len, PgnwError *err);

/* the named shared region (created zero-filled on first use) */
extern bool pgnw_shared_open(const char *name, size_t size, void **ptr, bool *created,
							 PgnwError *err);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_BUFFERS_H */
