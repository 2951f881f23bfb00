/*-------------------------------------------------------------------------
 *
 * messaging.h
 *	  Who may talk to a worker, for the other SQL entry points that share
 *	  messaging.c's rule (jobs.c: a queue belongs to the worker it is
 *	  named after).
 *
 * extension/messaging.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_MESSAGING_H
#define PGNW_MESSAGING_H

#include "supervisor.h"

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

/*
 * May role talk to worker name (call, notify, wake, its queues)?
 * Superusers, members of node_worker_admin and members of the roles in the
 * worker's callers list may.  A worker that is neither deployed nor has a
 * slot admits only the first two.  Fills *t (pgnw_find_worker()) unless
 * the answer came before it was needed (then t->known is false).
 */
extern bool pgnw_messaging_may_talk(const char *name, Oid role, PgnwTarget *t);

#pragma GCC visibility pop

#endif							/* PGNW_MESSAGING_H */
