/*-------------------------------------------------------------------------
 *
 * control.h
 *	  Starting and stopping worker processes (control.c), for the other
 *	  modules of pg_node_worker.so.  pgnw_launch(), which the bridge calls
 *	  for ctx.launch(), is in pg_node_worker.h.
 *
 * extension/control.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_CONTROL_H
#define PGNW_CONTROL_H

#include "postmaster/bgworker.h"
#include "storage/lwlock.h"

#include "pg_node_worker.h"

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

/* shared memory: size to request, and set-up (under AddinShmemInitLock) */
extern Size pgnw_control_shmem_size(void);
extern void pgnw_control_shmem_init(LWLock *lock);

/* the bgworker registration of a node worker for slot "index" */
extern void pgnw_control_fill_bgworker(BackgroundWorker *worker, const PgnwManifest *m,
									   int index);

#pragma GCC visibility pop

#endif							/* PGNW_CONTROL_H */
