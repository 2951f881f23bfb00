/*-------------------------------------------------------------------------
 *
 * messaging.h
 *		A worker's inbox as plain C for the N-API layer (messaging.cc);
 *		implemented in messaging_ops.c through the guard of guard.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_MESSAGING_H
#define PGNW_MESSAGING_H

#include "guard.h"

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct PgnwInboxMessage
{
	bool		is_call;		/* else a notify() */
	uint64_t	request_id;
	int			caller_procno;
	int			caller_pid;
	char	   *role;			/* malloc'd */
	char	   *database;		/* malloc'd */
	char	   *payload;		/* malloc'd JSON text */
	uint32_t	payload_len;
	uint64_t	position;		/* notify: acknowledge with pgnw_inbox_ack() once handled */
	double		time_left_ms;	/* call: until its caller gives up */
	bool		redelivered;	/* notify: an earlier process of the worker had it */
} PgnwInboxMessage;

/*
 * The deliverable messages (malloc'd array; free with pgnw_inbox_free),
 * whether wake() was called, and whether a caller gave up on a call.
 */
extern bool pgnw_inbox_take(PgnwInboxMessage **out, int *n, bool *woken, bool *abandoned,
							PgnwError *err);
/* the notifications at these positions were handled (the array is reordered) */
extern bool pgnw_inbox_ack(uint64_t *positions, int n, PgnwError *err);
/*
 * For each call (caller procno, request id): does its caller still wait
 * (contract.h PGNW_CALLER_*)?
 */
extern bool pgnw_inbox_call_states(const int *procnos, const uint64_t *request_ids, int n,
								   int *states, PgnwError *err);
extern void pgnw_inbox_free(PgnwInboxMessage *msgs, int n);
/* answer a call; *delivered is false when the caller gave up */
extern bool pgnw_inbox_reply(int procno, uint64_t request_id, bool is_error, const char *sqlstate,
							 const char *data, uint32_t len, bool *delivered, PgnwError *err);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_MESSAGING_H */
