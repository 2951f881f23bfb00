/*-------------------------------------------------------------------------
 *
 * workers.c
 *		The rows of the node_worker.workers view (SQL function
 *		node_worker.worker_status()): every worker slot in use, plus every
 *		deployed worker that has none.
 *
 * The slots are copied under their lock at once, so a row never mixes two
 * moments of one slot; the manifests are read afterwards, so a worker
 * deployed meanwhile may or may not show.  A deployed worker without a slot
 * shows as "deployed" when it starts only when launched (autostart false),
 * else as "stopped" (deployed after the server started, never launched),
 * or as "failed" with the reason when its manifest is invalid.
 *
 * The module has no C interface: only the SQL function.
 *
 * extension/workers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "manifest.h"
#include "supervisor.h"

PG_FUNCTION_INFO_V1(node_worker_workers);

/* columns of node_worker.worker_status() */
#define PGNW_WORKERS_COLUMNS 14

/*
 * The worker name shown for a manifest "<name>.json" that has no slot.  An
 * invalid file name may hold any bytes: shown as ASCII, with other bytes
 * as \xHH, cut to fit, so the view's text is valid in any encoding.
 */
static void
pgnw_workers_printable_name(const char *name, char *out, size_t outlen)
{
	size_t		o = 0;

	for (size_t k = 0; name[k] != '\0'; k++)
	{
		unsigned char c = (unsigned char) name[k];

		if (c >= 0x20 && c < 0x7f)
		{
			if (o + 1 >= outlen)
				break;
			out[o++] = (char) c;
		}
		else
		{
			if (o + 4 >= outlen)
				break;
			snprintf(out + o, outlen - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
}

/*
 * The row of a deployed worker that has no slot, as a slot: *s from its
 * manifest, or "failed" with the reason it cannot be read.  False when one
 * of the slots already shows the worker.
 */
static bool
pgnw_workers_deployed_row(const char *file_name, const PgnwSlot *slots, int nslots,
						  PgnwSlot *s)
{
	char		name[PGNW_WORKER_NAME_MAX + 1];
	char		path[MAXPGPATH];
	PgnwManifest m;
	char	   *reason = NULL;

	pgnw_workers_printable_name(file_name, name, sizeof(name));
	for (int j = 0; j < nslots; j++)
		if (slots[j].in_use && strcmp(slots[j].name, name) == 0)
			return false;
	memset(s, 0, sizeof(*s));
	s->is_static = true;
	if (!pgnw_manifest_path(file_name, path))
		reason = strdup("path is too long");
	else if (pgnw_read_manifest(path, &m, &reason))
	{
		pgnw_slot_fill_from_manifest(s, &m);
		s->is_static = m.autostart;
		s->state = m.autostart ? PGNW_STATE_STOPPED : PGNW_STATE_DEPLOYED;
		return true;
	}
	strlcpy(s->name, name, sizeof(s->name));
	snprintf(s->last_error, sizeof(s->last_error), "invalid manifest: %s",
			 reason ? reason : "out of memory");
	free(reason);
	s->state = PGNW_STATE_FAILED;
	return true;
}

/*
 * One row of the view, from slot s; index is its slot number, or -1 for a
 * deployed worker that has no slot.
 */
static void
pgnw_workers_put_row(ReturnSetInfo *rsinfo, const PgnwSlot *s, int index)
{
	Datum		values[PGNW_WORKERS_COLUMNS];
	bool		nulls[PGNW_WORKERS_COLUMNS];
	char		path[MAXPGPATH];
	struct stat st;

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(s->name);
	values[1] = CStringGetTextDatum(s->is_static ? "static" : "dynamic");
	values[2] = Int32GetDatum(s->pid);
	nulls[2] = s->pid == 0;
	values[3] = CStringGetTextDatum(pgnw_slot_state_name(s->state));
	values[4] = CStringGetTextDatum(s->database);
	values[5] = CStringGetTextDatum(s->role);
	nulls[5] = s->role[0] == '\0';
	values[6] = TimestampTzGetDatum(s->started_at);
	nulls[6] = s->started_at == 0;
	values[7] = Int32GetDatum(Max(s->starts - 1, 0));
	values[8] = TimestampTzGetDatum(s->last_exit_at);
	nulls[8] = s->last_exit_at == 0;
	values[9] = CStringGetTextDatum(s->last_error);
	nulls[9] = s->last_error[0] == '\0';
	values[10] = CStringGetTextDatum(s->last_sqlstate);
	nulls[10] = s->last_sqlstate[0] == '\0';
	values[11] = CStringGetTextDatum(s->sha256);
	nulls[11] = s->sha256[0] == '\0';
	if (pgnw_manifest_path(s->name, path) && stat(path, &st) == 0)
		values[12] = TimestampTzGetDatum(time_t_to_timestamptz(st.st_mtime));
	else
		nulls[12] = true;
	/* read only where the SQL definition has it (0.5 on) */
	values[13] = Int32GetDatum(index);
	nulls[13] = index < 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * The rows of node_worker.workers: every slot in use, plus every deployed
 * worker that has none (deployed after the server started, not launched).
 */
Datum
node_worker_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgnwSlot   *slots;
	int			nslots;
	int			nnames;
	char	  **names;

	slots = pgnw_slot_snapshot(&nslots);
	InitMaterializedSRF(fcinfo, 0);
	names = pgnw_list_manifests(&nnames);

	for (int i = 0; i < nslots; i++)
		if (slots[i].in_use)
			pgnw_workers_put_row(rsinfo, &slots[i], i);
	for (int i = 0; i < nnames; i++)
	{
		PgnwSlot	pending;

		if (pgnw_workers_deployed_row(names[i], slots, nslots, &pending))
			pgnw_workers_put_row(rsinfo, &pending, -1);
	}
	return (Datum) 0;
}
