/*-------------------------------------------------------------------------
 *
 * spi_reference.c
 *		The C baseline for `npm run bench`: a small dynamic background
 *		worker that runs the same SPI loops as the TypeScript runtime, with
 *		no JavaScript and no N-API in between.
 *
 * pgnw_bench_launch(mode, run, arg) registers one dynamic bgworker and
 * returns its pid.  The worker connects to the caller's database as the
 * bootstrap superuser, runs `mode`, and writes its figures into
 * bench_results(run, key, value, note), one transaction per INSERT.  Every
 * launch also records fork -> first line of the worker's main and fork ->
 * connected (MyStartTimestamp is set right after the postmaster's fork,
 * the same clock ctx.worker.startedAt is taken from).
 *
 * Modes:
 *   select1_each  arg = ms: loop SELECT 1, one transaction per call
 *   select1_xact  arg = ms: loop SELECT 1, all calls in one transaction
 *   select1_naive_each, select1_naive_xact
 *                 the same with SPI_execute("SELECT 1") per call (parse,
 *                 plan and execute every time: the naive C loop)
 *   fetch2        arg = runs: SELECT i, t FROM bench_rows, every tuple deformed,
 *                 every text byte read
 *   fetch8        arg = runs: the 8-column table (int4, int8, float8, bool, text,
 *                 timestamptz, jsonb, numeric): every tuple deformed, text bytes
 *                 read, jsonb and numeric through their output functions (their
 *                 text form, as a client gets it)
 *   idle          wait on the latch until SIGTERM (memory baseline)
 *   startup       record the start-up figures and exit
 *
 * Per call the SELECT 1 loops make exactly the PostgreSQL calls that
 * native/execute_ops.c and xact_ops.c make for ctx.sql with a cached plan: report activity,
 * (start a transaction,) push a snapshot, SPI_connect, SPI_execute_plan of
 * a kept plan, read the value, SPI_finish, pop the snapshot, (commit,)
 * report idle.  So C vs TS isolates the cost of JS, N-API and result
 * building.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(pgnw_bench_launch);
PGDLLEXPORT void pgnw_bench_worker_main(Datum arg);

#define SELECT1_SQL "SELECT 1"
#define FETCH2_SQL "SELECT i, t FROM bench_rows"
#define FETCH8_SQL "SELECT a, b, c, d, e, f, g, h FROM bench_rows8"

/* what the launcher hands to the worker, in bgw_extra (BGW_EXTRALEN = 128) */
typedef struct BenchArgs
{
	Oid			dboid;
	int32		arg;
	char		mode[24];
	char		run[64];
} BenchArgs;

StaticAssertDecl(sizeof(BenchArgs) <= BGW_EXTRALEN, "BenchArgs must fit in bgw_extra");

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- launcher */

Datum
pgnw_bench_launch(PG_FUNCTION_ARGS)
{
	char	   *mode = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *run = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		arg = PG_GETARG_INT32(2);
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BenchArgs	args;
	pid_t		pid;
	HeapTuple	tup;
	bool		isnull;
	Datum		probin;

	memset(&args, 0, sizeof(args));
	args.dboid = MyDatabaseId;
	args.arg = arg;
	strlcpy(args.mode, mode, sizeof(args.mode));
	strlcpy(args.run, run, sizeof(args.run));

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	/*
	 * This library, by the path the calling function was created with
	 * (probin: an absolute path, or a name in $libdir).
	 */
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	probin = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_probin, &isnull);
	if (isnull)
		elog(ERROR, "pgnw_bench_launch has no library path");
	if (strlen(TextDatumGetCString(probin)) >= BGW_MAXLEN)
		elog(ERROR, "library path \"%s\" is too long for bgw_library_name", TextDatumGetCString(probin));
	strlcpy(worker.bgw_library_name, TextDatumGetCString(probin), BGW_MAXLEN);
	ReleaseSysCache(tup);
	strlcpy(worker.bgw_function_name, "pgnw_bench_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "pgnw_bench %s", args.mode);
	strlcpy(worker.bgw_type, "pgnw_bench", BGW_MAXLEN);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = MyProcPid;
	memcpy(worker.bgw_extra, &args, sizeof(args));

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not register a pgnw_bench background worker"),
				 errhint("Raise max_worker_processes.")));
	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("the pgnw_bench background worker did not start")));
	PG_RETURN_INT32(pid);
}

/* --------------------------------------------------------------- worker */

static const char *bench_run;

/* INSERT one figure in a transaction of its own */
static void
record(const char *key, double value, const char *note)
{
	Oid			types[4] = {TEXTOID, TEXTOID, FLOAT8OID, TEXTOID};
	Datum		values[4];
	char		nulls[5] = "   n";

	values[0] = CStringGetTextDatum(bench_run);
	values[1] = CStringGetTextDatum(key);
	values[2] = Float8GetDatum(value);
	if (note)
	{
		values[3] = CStringGetTextDatum(note);
		nulls[3] = ' ';
	}
	else
		values[3] = (Datum) 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("INSERT INTO bench_results(run, key, value, note) VALUES ($1, $2, $3, $4)",
							  4, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "INSERT INTO bench_results failed");
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* SPI_prepare + SPI_keepplan, as pgnw_prepare does (in a transaction of its own) */
static SPIPlanPtr
prepare_kept(const char *sql)
{
	SPIPlanPtr	plan;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_prepare failed for %s", sql);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return plan;
}

/* one SELECT 1; the transaction (if any) is the caller's */
static inline int64
select1_once(SPIPlanPtr plan)
{
	bool		isnull;
	int64		v;

	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(plan, NULL, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SELECT 1 failed");
	v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PopActiveSnapshot();
	return v;
}

/* one SELECT 1 through SPI_execute: parsed and planned every time */
static inline int64
select1_naive_once(void)
{
	bool		isnull;
	int64		v;

	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(SELECT1_SQL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SELECT 1 failed");
	v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PopActiveSnapshot();
	return v;
}

/*
 * Loop SELECT 1 for warmup_ms (not counted), then for ms; return calls/s.
 * plan NULL: SPI_execute of the text per call.
 * one_xact: all calls in one transaction (as inside ctx.transaction),
 * else a transaction per call (as ctx.sql outside one).
 */
static double
select1_loop(SPIPlanPtr plan, bool one_xact, int ms, int64 *checksum)
{
	double		t0,
				t,
				limit = ms / 1000.0;
	int64		n = 0,
				sum = 0;

	if (one_xact)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
	}
	t0 = now_s();
	do
	{
		for (int k = 0; k < 64; k++)
		{
			pgstat_report_activity(STATE_RUNNING, SELECT1_SQL);
			if (!one_xact)
			{
				SetCurrentStatementStartTimestamp();
				StartTransactionCommand();
			}
			sum += plan ? select1_once(plan) : select1_naive_once();
			if (!one_xact)
				CommitTransactionCommand();
			pgstat_report_activity(one_xact ? STATE_IDLEINTRANSACTION : STATE_IDLE, NULL);
		}
		n += 64;
		CHECK_FOR_INTERRUPTS();
		t = now_s();
	} while (t - t0 < limit);
	if (one_xact)
		CommitTransactionCommand();
	*checksum += sum;
	return n / (t - t0);
}

/*
 * Run a fetch query once, deforming every tuple and reading every value
 * (text bytes; jsonb and numeric through their output functions); rows/s
 * end to end.  *exec_s: until SPI_execute_plan returned (the query ran, SPI
 * holds the rows); *deform_s: the deform loop alone.
 */
static double
fetch_once(SPIPlanPtr plan, const char *sql, uint64 *rows, uint64 *checksum,
		   double *exec_s, double *deform_s)
{
	double		t0 = now_s(),
				t1,
				t2,
				t;
	uint64		sum = 0,
				n;
	Datum	   *vals;
	bool	   *nulls;
	TupleDesc	desc;
	int			natts;
	FmgrInfo   *out;
	bool	   *use_out;

	pgstat_report_activity(STATE_RUNNING, sql);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(plan, NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "the fetch query failed");
	t1 = now_s();
	n = SPI_processed;
	desc = SPI_tuptable->tupdesc;
	natts = desc->natts;
	vals = palloc(sizeof(Datum) * natts);
	nulls = palloc(sizeof(bool) * natts);
	out = palloc0(sizeof(FmgrInfo) * natts);
	use_out = palloc0(sizeof(bool) * natts);
	for (int c = 0; c < natts; c++)
	{
		Oid			typ = TupleDescAttr(desc, c)->atttypid;

		if (typ == JSONBOID || typ == NUMERICOID)
		{
			Oid			fn;
			bool		isvarlena;

			getTypeOutputInfo(typ, &fn, &isvarlena);
			fmgr_info(fn, &out[c]);
			use_out[c] = true;
		}
	}
	for (uint64 r = 0; r < n; r++)
	{
		heap_deform_tuple(SPI_tuptable->vals[r], desc, vals, nulls);
		for (int c = 0; c < natts; c++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, c);

			if (nulls[c])
				continue;
			if (use_out[c])
			{
				char	   *s = OutputFunctionCall(&out[c], vals[c]);

				sum += strlen(s);
				pfree(s);
			}
			else if (att->attlen == -1)
			{
				struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(vals[c]));
				const unsigned char *p = (const unsigned char *) VARDATA_ANY(v);
				int			len = VARSIZE_ANY_EXHDR(v);

				for (int i = 0; i < len; i++)
					sum += p[i];
			}
			else if (att->attbyval)
				sum += (uint64) vals[c];
		}
		if ((r & 4095) == 4095)
			CHECK_FOR_INTERRUPTS();
	}
	t2 = now_s();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	t = now_s();
	*exec_s = t1 - t0;
	*deform_s = t2 - t1;
	*rows = n;
	*checksum += sum;
	return n / (t - t0);
}

void
pgnw_bench_worker_main(Datum main_arg)
{
	TimestampTz entered = GetCurrentTimestamp();	/* the first line */
	TimestampTz connected;
	BenchArgs	args;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	bench_run = args.run;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	connected = GetCurrentTimestamp();
	pgstat_report_appname("pgnw_bench");

	record("fork_to_main_ms", (entered - MyStartTimestamp) / 1000.0, NULL);
	record("fork_to_connected_ms", (connected - MyStartTimestamp) / 1000.0, NULL);
	record("pid", MyProcPid, NULL);

	if (strncmp(args.mode, "select1_", 8) == 0)
	{
		bool		one_xact = strstr(args.mode, "_xact") != NULL;
		bool		naive = strstr(args.mode, "_naive") != NULL;
		SPIPlanPtr	plan = naive ? NULL : prepare_kept(SELECT1_SQL);
		int64		checksum = 0;
		int			warmup = Min(300, args.arg / 5);

		(void) select1_loop(plan, one_xact, warmup, &checksum);
		record("calls_per_s", select1_loop(plan, one_xact, args.arg, &checksum), NULL);
		record("checksum", (double) checksum, NULL);
	}
	else if (strcmp(args.mode, "fetch2") == 0 || strcmp(args.mode, "fetch8") == 0)
	{
		const char *sql = strcmp(args.mode, "fetch2") == 0 ? FETCH2_SQL : FETCH8_SQL;
		SPIPlanPtr	plan = prepare_kept(sql);
		uint64		checksum = 0;

		for (int i = 0; i < args.arg; i++)
		{
			uint64		rows;
			double		exec_s,
						deform_s;
			double		rate = fetch_once(plan, sql, &rows, &checksum, &exec_s, &deform_s);

			record("rows_per_s", rate, NULL);
			record("rows", (double) rows, NULL);
			record("exec_ms", exec_s * 1000.0, NULL);
			record("deform_ms", deform_s * 1000.0, NULL);
		}
		record("checksum", (double) checksum, NULL);
	}
	else if (strcmp(args.mode, "idle") == 0)
	{
		record("done", 1, NULL);
		for (;;)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	else if (strcmp(args.mode, "startup") != 0)
		record("error", 0, psprintf("unknown mode \"%s\"", args.mode));

	record("done", 1, NULL);
	proc_exit(0);
}
