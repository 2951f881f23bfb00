/*-------------------------------------------------------------------------
 *
 * messaging_ops.c
 *		PostgreSQL side of a worker's inbox (extension/messaging.c): take
 *		the deliverable messages, reply to calls.  Each through pgnw_guard().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "../extension/pg_node_worker.h"
#include "contract.h"
#include "messaging.h"

/* callStates() hands the extension's PgnwCallState on as contract.h's values */
StaticAssertDecl((int) PGNW_CALL_WAITING == (int) PGNW_CALLER_WAITING &&
				 (int) PGNW_CALL_TIMED_OUT == (int) PGNW_CALLER_TIMED_OUT &&
				 (int) PGNW_CALL_CANCELLED == (int) PGNW_CALLER_GONE,
				 "PgnwCallState and contract.h's PGNW_CALLER_* differ");

typedef struct PgnwTakeArgs
{
	PgnwInboxMessage *out;
	int			n;
	bool		woken;
	bool		abandoned;
} PgnwTakeArgs;

/* a malloc'd copy of s ("" for NULL), or the ERROR of no memory */
static char *
messaging_strdup_or_empty(const char *s)
{
	char	   *copy = strdup(s ? s : "");

	if (copy == NULL)
		elog(ERROR, "out of memory");
	return copy;
}

/* Take the deliverable messages as malloc'd PgnwInboxMessages (arg: PgnwTakeArgs). */
static void
messaging_op_take(void *arg)
{
	PgnwTakeArgs *a = (PgnwTakeArgs *) arg;
	PgnwTakenMessage *msgs;
	int			n;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_node_worker inbox",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	int64		now = pgnw_clock_us();

	n = pgnw_worker_take_messages(pgnw_worker_slot(), pgnw_worker_start_clock(), &msgs,
								  &a->woken, &a->abandoned);
	MemoryContextSwitchTo(old);
	a->out = n > 0 ? calloc(n, sizeof(PgnwInboxMessage)) : NULL;
	if (n > 0 && a->out == NULL)
		elog(ERROR, "out of memory");
	for (int i = 0; i < n; i++)
	{
		PgnwInboxMessage *m = &a->out[i];

		m->is_call = msgs[i].header.kind == PGNW_MSG_CALL;
		m->request_id = msgs[i].header.request_id;
		m->caller_procno = msgs[i].header.caller_procno;
		m->caller_pid = msgs[i].header.caller_pid;
		m->role = messaging_strdup_or_empty(msgs[i].header.role);
		m->database = messaging_strdup_or_empty(msgs[i].header.database);
		m->payload = messaging_strdup_or_empty(msgs[i].payload);
		m->payload_len = msgs[i].header.payload_len;
		m->position = msgs[i].position;
		m->time_left_ms = m->is_call ? (double) (msgs[i].header.deadline - now) / 1000.0 : 0;
		m->redelivered = msgs[i].header.deliveries > 1;
	}
	a->n = n;
	MemoryContextDelete(cxt);
}

/* The deliverable messages of this worker's inbox, and whether it was woken. */
bool
pgnw_inbox_take(PgnwInboxMessage **out, int *n, bool *woken, bool *abandoned, PgnwError *err)
{
	PgnwTakeArgs a = {NULL, 0, false, false};

	*out = NULL;
	*n = 0;
	*woken = false;
	*abandoned = false;
	if (pgnw_worker_slot() < 0)
		return true;
	if (!pgnw_guard(messaging_op_take, &a, err))
		return false;
	*out = a.out;
	*n = a.n;
	*woken = a.woken;
	*abandoned = a.abandoned;
	return true;
}

typedef struct PgnwAckArgs
{
	uint64_t   *positions;
	int			n;
} PgnwAckArgs;

/* Give back the space of handled notifications (arg: PgnwAckArgs). */
static void
messaging_op_ack(void *arg)
{
	PgnwAckArgs *a = (PgnwAckArgs *) arg;

	pgnw_worker_ack(pgnw_worker_slot(), a->positions, a->n);
}

/* The notifications at these positions were handled. */
bool
pgnw_inbox_ack(uint64_t *positions, int n, PgnwError *err)
{
	PgnwAckArgs a = {positions, n};

	if (pgnw_worker_slot() < 0 || n <= 0)
		return true;
	return pgnw_guard(messaging_op_ack, &a, err);
}

typedef struct PgnwStatesArgs
{
	const int  *procnos;
	const uint64_t *request_ids;
	int			n;
	int		   *states;
} PgnwStatesArgs;

/* Look up each call's caller (arg: PgnwStatesArgs). */
static void
messaging_op_call_states(void *arg)
{
	PgnwStatesArgs *a = (PgnwStatesArgs *) arg;
	PgnwCallState *states = palloc(sizeof(PgnwCallState) * Max(a->n, 1));

	pgnw_worker_call_states(a->procnos, a->request_ids, a->n, states);
	for (int i = 0; i < a->n; i++)
		a->states[i] = (int) states[i];
	pfree(states);
}

/* For each call, does its caller still wait (contract.h PGNW_CALLER_*)? */
bool
pgnw_inbox_call_states(const int *procnos, const uint64_t *request_ids, int n, int *states,
					   PgnwError *err)
{
	PgnwStatesArgs a = {procnos, request_ids, n, states};

	return pgnw_guard(messaging_op_call_states, &a, err);
}

/* Free the messages of pgnw_inbox_take. */
void
pgnw_inbox_free(PgnwInboxMessage *msgs, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(msgs[i].role);
		free(msgs[i].database);
		free(msgs[i].payload);
	}
	free(msgs);
}

typedef struct PgnwReplyArgs
{
	int			procno;
	uint64_t	request_id;
	bool		is_error;
	const char *sqlstate;
	const char *data;
	uint32_t	len;
	bool		delivered;
} PgnwReplyArgs;

/* Hand the reply to the caller's mailbox (arg: PgnwReplyArgs). */
static void
messaging_op_reply(void *arg)
{
	PgnwReplyArgs *a = (PgnwReplyArgs *) arg;

	a->delivered = pgnw_worker_reply(a->procno, a->request_id, a->is_error, a->sqlstate,
									 a->data, a->len);
}

/* Answer a call; *delivered is false when its caller gave up. */
bool
pgnw_inbox_reply(int procno, uint64_t request_id, bool is_error, const char *sqlstate,
				 const char *data, uint32_t len, bool *delivered, PgnwError *err)
{
	PgnwReplyArgs a = {procno, request_id, is_error, sqlstate, data, len, false};

	if (!pgnw_guard(messaging_op_reply, &a, err))
		return false;
	*delivered = a.delivered;
	return true;
}
