/*-------------------------------------------------------------------------
 *
 * runtime_embed.h
 *	  Node embedded in a worker (runtime_embed.cc): start-up, the isolate
 *	  and its environment, the helper threads, and the event loop driven by
 *	  PostgreSQL's WaitEventSet.  Not exported (see runtime.h for what the
 *	  bridge sees and for the naming rule).
 *
 * extension/runtime_embed.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_RUNTIME_EMBED_H
#define PGNW_RUNTIME_EMBED_H

#include <node.h>

#include <signal.h>

#include <memory>

#pragma GCC visibility push(hidden)

/*
 * Node and V8 for this process, with a JavaScript heap limit of heap_mb.
 * ERROR when Node refuses to start (after putting back the signal mask).
 */
extern std::unique_ptr<node::MultiIsolatePlatform> pgnw_embed_start_node(int heap_mb,
																		 const sigset_t *saved_mask);

/*
 * The worker's isolate, on its event loop, with the budgeted allocator and,
 * when young_mb > 0, a young generation of at most young_mb; ERROR on
 * failure.
 */
extern v8::Isolate *pgnw_embed_new_isolate(node::MultiIsolatePlatform *platform, int heap_mb,
										   int young_mb, const sigset_t *saved_mask);

/*
 * The worker's Node environment in a new context (*context), in the
 * caller's isolate and handle scopes; ERROR on failure.
 */
extern node::Environment *pgnw_embed_new_environment(v8::Isolate *isolate,
													 node::MultiIsolatePlatform *platform,
													 int heap_mb,
													 v8::Local<v8::Context> *context,
													 const sigset_t *saved_mask);

/* process.exit() and the like end the worker through pgnw_request_exit() */
extern void pgnw_embed_catch_process_exit(node::Environment *env);

/* while every signal is blocked: libuv's threadpool and the watchdog thread */
extern void pgnw_embed_start_threads(void);

/*
 * Load runtime.js with the worker's bundle, then run the event loop until
 * the worker leaves.
 */
extern void pgnw_embed_run(node::Environment *env, v8::Isolate *isolate,
						   v8::Local<v8::Context> context, const char *bundle_path);

/* main thread: say, once, that the watchdog had to stop JS at shutdown */
extern void pgnw_embed_report_grace_expired(void);

#pragma GCC visibility pop

#endif							/* PGNW_RUNTIME_EMBED_H */
