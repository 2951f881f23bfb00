/*-------------------------------------------------------------------------
 *
 * wait_events.c
 *		The names a node worker's waits show in pg_stat_activity.wait_event
 *		(wait_event_type "Extension") and in pg_wait_events.
 *
 * From PostgreSQL 17 on, an extension may name its waits
 * (WaitEventExtensionNew): a worker idle in its event loop shows
 * NodeWorkerMain instead of the anonymous "Extension", as PostgreSQL's
 * worker_spi shows WorkerSpiMain.  Before 17 every wait here is the plain
 * PG_WAIT_EXTENSION.  The names are registered once per cluster (the first
 * process to ask registers them, in shared memory) and looked up once per
 * process.
 *
 * extension/wait_events.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/wait_event.h"

#include "compat.h"
#include "pg_node_worker.h"

static const char *const pgnw_wait_event_names[PGNW_NUM_WAIT_EVENTS] = {
	[PGNW_WAIT_MAIN] = "NodeWorkerMain",
	[PGNW_WAIT_CALL] = "NodeWorkerCall",
	[PGNW_WAIT_INBOX_FULL] = "NodeWorkerInboxFull",
	[PGNW_WAIT_CONTROL] = "NodeWorkerControl",
};

/* this process's wait event infos, 0 until looked up */
static uint32 pgnw_wait_event_infos[PGNW_NUM_WAIT_EVENTS];

/*
 * The wait_event_info of one of the worker's waits.  May ERROR (out of
 * shared memory for the names) the first time only: call it where an
 * ERROR is acceptable, before waiting.
 */
uint32
pgnw_wait_event(PgnwWaitEvent which)
{
	if (pgnw_wait_event_infos[which] == 0)
		pgnw_wait_event_infos[which] = pgnw_wait_event_new(pgnw_wait_event_names[which]);
	return pgnw_wait_event_infos[which];
}
