/*-------------------------------------------------------------------------
 *
 * runtime_process.cc
 *		The worker process as every part of the runtime sees it: who it is
 *		(pgnw_worker_info), which thread is PostgreSQL's, and how it
 *		leaves: the request to exit, stopping JavaScript from another
 *		thread, stdio of its own, and an exit that skips static destructors.
 *
 * A worker killed by a signal makes the postmaster reset the whole
 * cluster, so every way out ends in exit code 0 or 1 through proc_exit():
 * JavaScript asks (pgnw_request_exit()), the watchdog insists
 * (pgnw_thread_stop_js()), and the last step never runs libnode's static
 * destructors, which abort on a live isolate.
 *
 * The lowest of the runtime's modules: it calls no other.
 *
 * extension/runtime_process.cc
 *
 *-------------------------------------------------------------------------
 */
#include <node.h>

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "runtime_process.h"

extern "C"
{
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"

#include "runtime.h"
}

/* ---- state shared with the bridge (see runtime.h) ---- */
extern "C"
{
	pthread_t	pgnw_main_thread;
	volatile sig_atomic_t pgnw_in_postgres = 0;
	PgnwWorkerInfo pgnw_worker_info;
}

std::atomic<bool> pgnw_process_exit_requested{false};
std::atomic<int> pgnw_process_exit_code{0};
std::atomic<bool> pgnw_process_force_stopped{false};
node::Environment *pgnw_process_env = nullptr;

/* the code proc_exit() was called with, for the atexit handler */
static int	pgnw_process_saved_exit_code = 1;

/* A monotonic clock in milliseconds; async-signal-safe. */
int64_t
pgnw_sig_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * JS asked to exit: stop the event loop and JS, and leave with 0 or 1 (any
 * other code would look like a crash to the postmaster).
 */
extern "C" void
pgnw_request_exit(int code)
{
	pgnw_process_exit_code = code == 0 ? 0 : 1;
	pgnw_process_exit_requested = true;
	if (pgnw_process_env)
		node::Stop(pgnw_process_env);
}

/*
 * The watchdog stops JS wherever it is (a runaway loop included), once, and
 * makes the main thread leave with exit code 1; if it is inside a SQL
 * statement and cancel_sql says so, that is cancelled too.
 */
void
pgnw_thread_stop_js(bool cancel_sql)
{
	if (pgnw_process_force_stopped.exchange(true))
		return;
	pgnw_process_exit_code = 1;
	pgnw_process_exit_requested = true;
	node::Stop(pgnw_process_env);
	if (cancel_sql && pgnw_in_postgres)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
}

/*
 * libuv sets O_NONBLOCK on fds 1 and 2 when JS touches process.stdout.  Their
 * open file description is shared with the postmaster and the syslogger pipe,
 * so give this process its own: opening /proc/self/fd/N of a pipe or a file
 * makes a new open file description.
 */
void
pgnw_process_private_stdio(void)
{
	for (int fd = 1; fd <= 2; fd++)
	{
		char		path[64];
		int			newfd;
		int			flags = fcntl(fd, F_GETFL);

		if (flags < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		newfd = open(path, (flags & O_ACCMODE) | (flags & O_APPEND) | O_CLOEXEC);
		if (newfd < 0)
			continue;
		dup2(newfd, fd);
		close(newfd);
	}
}

/*
 * The atexit handler that ends the process before any static destructor
 * runs (see pgnw_process_skip_destructors_at_exit()).
 */
static void
pgnw_process_exit_now(void)
{
	_exit(pgnw_process_saved_exit_code == 0 ? 0 : 1);
}

/* on_proc_exit callback: remember the code, register the atexit handler. */
static void
pgnw_process_arm_exit(int code, Datum arg)
{
	pgnw_process_saved_exit_code = code;
	atexit(pgnw_process_exit_now);
}

/*
 * The process must never run the static destructors of libnode or of any
 * addon: they abort ("Disposing the isolate that is entered by a thread") or
 * crash on a live isolate, and a worker killed by a signal makes the
 * postmaster reset the whole cluster.  exit() runs atexit handlers in reverse
 * order of registration, so the handler that skips them is registered at the
 * last moment: from an on_proc_exit callback, i.e. inside proc_exit() after
 * PostgreSQL's own cleanup has run and just before it calls exit().
 */
void
pgnw_process_skip_destructors_at_exit(void)
{
	on_proc_exit(pgnw_process_arm_exit, (Datum) 0);
}
