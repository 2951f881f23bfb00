/*-------------------------------------------------------------------------
 *
 * runtime_process.h
 *	  The worker process as the runtime's parts share it (runtime_process.cc):
 *	  the request to leave, stopping JavaScript, and leaving without running
 *	  static destructors.  The lowest of the runtime's modules: it calls no
 *	  other.  Not exported (see runtime.h for what the bridge sees and for
 *	  the naming rule).
 *
 * extension/runtime_process.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_RUNTIME_PROCESS_H
#define PGNW_RUNTIME_PROCESS_H

#include <node.h>

#include <atomic>
#include <cstdint>

#pragma GCC visibility push(hidden)

/* the worker is leaving: the event loop stops */
extern std::atomic<bool> pgnw_process_exit_requested;
/* the code it leaves with (0 or 1) */
extern std::atomic<int> pgnw_process_exit_code;
/* pgnw_thread_stop_js() ran */
extern std::atomic<bool> pgnw_process_force_stopped;
/* the worker's Node environment, once it exists (set by runtime_embed.cc) */
extern node::Environment *pgnw_process_env;

/* a monotonic clock in milliseconds */
extern int64_t pgnw_sig_now_ms(void);

/*
 * Stop JS wherever it is (a runaway loop included), once, and make the main
 * thread leave with exit code 1; with cancel_sql, also cancel a statement
 * the main thread is running.
 */
extern void pgnw_thread_stop_js(bool cancel_sql);

/* give this process its own open file descriptions for fds 1 and 2 */
extern void pgnw_process_private_stdio(void);

/* from now on, exit() leaves without running static destructors */
extern void pgnw_process_skip_destructors_at_exit(void);

#pragma GCC visibility pop

#endif							/* PGNW_RUNTIME_PROCESS_H */
