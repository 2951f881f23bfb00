/*-------------------------------------------------------------------------
 *
 * shared.h
 *	  The pool of named shared memory regions (shared.c), for the other
 *	  modules of pg_node_worker.so.  pgnw_shared_region(), which the bridge
 *	  calls for ctx.shared(), is in pg_node_worker.h.
 *
 * extension/shared.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_SHARED_H
#define PGNW_SHARED_H

#include "storage/lwlock.h"

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

#define PGNW_REGION_NAME_MAX 63		/* bytes */
#define PGNW_MAX_REGIONS 256

/* node_worker.shared_memory_mb: the pool regions are allocated from (0: disabled) */
extern int	pgnw_shared_memory_mb;

/* shared memory: size to request, and set-up (under AddinShmemInitLock) */
extern Size pgnw_shared_shmem_size(void);
extern void pgnw_shared_shmem_init(LWLock *lock);

#pragma GCC visibility pop

#endif							/* PGNW_SHARED_H */
