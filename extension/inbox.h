/*-------------------------------------------------------------------------
 *
 * inbox.h
 *	  The inboxes of the workers and the reply mailboxes of the backends in
 *	  shared memory (inbox.c), for the senders in messaging.c.  The worker's
 *	  side (pgnw_worker_take_messages() and the rest) is in pg_node_worker.h.
 *
 * Every function here takes the messaging lock itself; none may be called
 * with it held.
 *
 * extension/inbox.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_INBOX_H
#define PGNW_INBOX_H

#include "storage/lwlock.h"

#include "pg_node_worker.h"

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

/* PgnwMessage.flags */
#define PGNW_MSG_HANDLED 0x0001	/* its space may be reused */

/* What became of a notification queued at commit */
typedef enum PgnwQueueResult
{
	PGNW_QUEUE_DONE,			/* in the inbox */
	PGNW_QUEUE_FULL,			/* no room now */
	PGNW_QUEUE_REPLACED			/* the slot belongs to another worker now */
} PgnwQueueResult;

/* node_worker.queue_size_kb, node_worker.max_message_kb */
extern int	pgnw_queue_size_kb;
extern int	pgnw_max_message_kb;

/* shared memory: size to request, and set-up (under AddinShmemInitLock) */
extern Size pgnw_inbox_shmem_size(void);
extern void pgnw_inbox_shmem_init(LWLock *lock);

/* bytes of an inbox, and the largest payload a message may carry */
extern uint32 pgnw_inbox_capacity(void);
extern uint32 pgnw_inbox_payload_limit(void);

/* bytes in use in the inbox of slot, if it belongs to identity generation (else 0) */
extern uint32 pgnw_inbox_used(int slot, uint64 generation);

/*
 * call(): give the caller's mailbox (h->caller_procno) a new request id,
 * into h->request_id, and append h with its payload to the inbox of slot
 * for identity generation.  False when the inbox has no room.
 */
extern bool pgnw_inbox_queue_call(int slot, uint64 generation, PgnwMessage *h,
								  const char *payload);

/* notify() at commit: append h with its payload to the inbox of slot */
extern PgnwQueueResult pgnw_inbox_queue_notify(int slot, uint64 generation,
											   const PgnwMessage *h, const char *payload);

/*
 * The reply to request request_id in the mailbox of procno, if it came:
 * *is_error, sqlstate[6] and a palloc'd *reply.  False while it has not.
 */
extern bool pgnw_inbox_take_reply(int procno, uint64 request_id, bool *is_error,
								  char *sqlstate, char **reply);

/* the caller of request_id gave up (why): drop a late reply, tell the worker */
extern void pgnw_inbox_abandon_call(int procno, uint64 request_id, int slot,
									PgnwCallState why);

#pragma GCC visibility pop

#endif							/* PGNW_INBOX_H */
