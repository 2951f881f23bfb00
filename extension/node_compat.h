/*-------------------------------------------------------------------------
 *
 * node_compat.h
 *	  Differences between the Node.js majors the runtime embeds (18, 20, 22
 *	  and 24: Debian's libnode108, 115, 127 and 137).
 *
 * Every NODE_MAJOR_VERSION test of the runtime lives here; the rest of it
 * uses what this header defines.  Node's C++ embedder API and V8's API are
 * not stable across majors, so each seam below says what changed and where.
 * The N-API bridge (native/) needs none: N-API is stable, and its few V8
 * calls are the same in all four.
 *
 * C++ only; include after <node.h>.
 *
 * extension/node_compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_NODE_COMPAT_H
#define PGNW_NODE_COMPAT_H

#if NODE_MAJOR_VERSION < 18 || NODE_MAJOR_VERSION > 24 || NODE_MAJOR_VERSION % 2 != 0
#error "pg_node_worker_runtime embeds Node 18, 20, 22 or 24 (libnode108, 115, 127, 137)"
#endif

/*
 * V8's out-of-memory callback: V8 11 (Node 20) passes an OOMDetails
 * instead of the is_heap_oom flag.  The runtime's handler keeps the flag;
 * pgnw_set_oom_handler adapts.
 */
typedef void (*PgnwOomHandler) (const char *location, bool is_heap_oom);

inline PgnwOomHandler pgnw_compat_oom_handler = nullptr;

#if NODE_MAJOR_VERSION >= 20
inline void
pgnw_compat_oom(const char *location, const v8::OOMDetails &details)
{
	pgnw_compat_oom_handler(location, details.is_heap_oom);
}
#else
inline void
pgnw_compat_oom(const char *location, bool is_heap_oom)
{
	pgnw_compat_oom_handler(location, is_heap_oom);
}
#endif

inline void
pgnw_set_oom_handler(v8::Isolate *isolate, PgnwOomHandler handler)
{
	pgnw_compat_oom_handler = handler;
	isolate->SetOOMErrorHandler(pgnw_compat_oom);
}

/*
 * v8::ArrayBuffer::Allocator::Reallocate: V8 13 (Node 24) dropped it (a
 * resize is a new allocation and a copy there).
 */
#define PGNW_ALLOCATOR_HAS_REALLOCATE (NODE_MAJOR_VERSION < 24)

/*
 * Start-up snapshots for embedders (EmbedderSnapshotData, the NewIsolate()
 * and CreateIsolateData() overloads taking one, GetMainContext()): Node 20
 * on.  Whether libnode carries a built-in one is a build option
 * (node_use_node_snapshot in its config.gypi): the Makefile passes
 * PGNW_NODE_BUILTIN_SNAPSHOT=1 when it does.  Debian builds Node 24 with
 * one, Node 20 and 22 without.
 */
#define PGNW_HAVE_SNAPSHOT_API (NODE_MAJOR_VERSION >= 20)
#ifndef PGNW_NODE_BUILTIN_SNAPSHOT
#define PGNW_NODE_BUILTIN_SNAPSHOT 0
#endif

/*
 * V8 13 (Node 24) makes its whole code range read-write-executable when
 * it creates an isolate (512 MB on x64 by default; pages are committed
 * later, as code is written), where the V8 of Node 18 to 22 reserves it
 * inaccessible.  A private writable mapping counts against RLIMIT_DATA
 * whether touched or not (an inaccessible one does not), so under a
 * data-segment limit the runtime sizes the code range itself
 * (runtime_memory.cc).  Only Isolate::CreateParams sets that size (V8 13
 * has no flag for it), and node::NewIsolate() takes no CreateParams: such
 * an isolate is made without Node's start-up snapshot (runtime_embed.cc).
 */
#define PGNW_CODE_RANGE_COUNTS_AS_DATA (NODE_MAJOR_VERSION >= 24)

#endif							/* PGNW_NODE_COMPAT_H */
