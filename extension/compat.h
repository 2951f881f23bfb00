/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Differences between the PostgreSQL major versions pg_node_worker
 *	  builds against (15 to 17).
 *
 * Every PG_VERSION_NUM test of extension/ and native/ lives here; the rest
 * of the code uses the wrappers below.  Each wrapper says which header its
 * expansion needs.  Below 15 the build stops (shmem_request_hook,
 * InitMaterializedSRF and MarkGUCPrefixReserved appeared in 15).
 *
 * extension/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_COMPAT_H
#define PGNW_COMPAT_H

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/guc.h"

/* 15: shmem_request_hook, InitMaterializedSRF, MarkGUCPrefixReserved */
#if PG_VERSION_NUM < 150000
#error "pg_node_worker requires PostgreSQL 15 or later"
#endif

/*
 * 18 replaced the postfix pg_attribute_noreturn() with pg_noreturn, which
 * goes before the declaration; GCC and Clang take the attribute there too.
 */
#if PG_VERSION_NUM < 180000 && !defined(pg_noreturn)
#define pg_noreturn __attribute__((noreturn))
#endif

/*
 * JSON lexer construction.  17 takes an optional caller-provided struct as
 * first argument (NULL = palloc one); earlier versions always palloc.  We
 * always want de-escaped strings (need_escapes) in UTF-8.
 */
#if PG_VERSION_NUM >= 170000
#define pgnw_make_json_lex(json, len) \
	makeJsonLexContextCstringLen(NULL, (json), (len), PG_UTF8, true)
#else
#define pgnw_make_json_lex(json, len) \
	makeJsonLexContextCstringLen((json), (len), PG_UTF8, true)
#endif

/*
 * JSON semantic action callbacks return JsonParseErrorType from 16 on and
 * void before.  Declare callbacks as returning pgnw_json_action_result and
 * end them with "return PGNW_JSON_ACTION_OK;".
 */
#if PG_VERSION_NUM >= 160000
typedef JsonParseErrorType pgnw_json_action_result;
#define PGNW_JSON_ACTION_OK JSON_SUCCESS
#else
typedef void pgnw_json_action_result;
#define PGNW_JSON_ACTION_OK
#endif

/*
 * Parse analysis with parameter types inferred from the statement (what the
 * extended query protocol does for unspecified types).  The same call on
 * every supported version; the bridge's one name for it.  Needs
 * parser/analyze.h.
 */
#define pgnw_parse_analyze_varparams(raw, sql, types, ntypes) \
	parse_analyze_varparams((raw), (sql), (types), (ntypes), NULL)

/*
 * Buffer tags and relation file identities (native/buffers_ops.c): 16
 * renamed RelFileNode to RelFileLocator (spcOid, dbOid, relNumber) and
 * flattened BufferTag.  Include storage/buf_internals.h and utils/rel.h
 * before using these.
 */
#if PG_VERSION_NUM >= 160000
#define pgnw_buftag_spc(tag)	((tag)->spcOid)
#define pgnw_buftag_db(tag)		((tag)->dbOid)
#define pgnw_buftag_rel(tag)	((Oid) BufTagGetRelNumber(tag))
#define pgnw_buftag_fork(tag)	BufTagGetForkNum(tag)
#define pgnw_rel_spc(rel)		((rel)->rd_locator.spcOid)
#define pgnw_rel_db(rel)		((rel)->rd_locator.dbOid)
#define pgnw_rel_filenode(rel)	((Oid) (rel)->rd_locator.relNumber)
#else
#define pgnw_buftag_spc(tag)	((tag)->rnode.spcNode)
#define pgnw_buftag_db(tag)		((tag)->rnode.dbNode)
#define pgnw_buftag_rel(tag)	((tag)->rnode.relNode)
#define pgnw_buftag_fork(tag)	((tag)->forkNum)
#define pgnw_rel_spc(rel)		((rel)->rd_node.spcNode)
#define pgnw_rel_db(rel)		((rel)->rd_node.dbNode)
#define pgnw_rel_filenode(rel)	((rel)->rd_node.relNode)
#endif

/* 16 added an error-saving context argument.  Needs utils/regproc.h. */
#if PG_VERSION_NUM >= 160000
#define pgnw_qualified_name_list(s) stringToQualifiedNameList((s), NULL)
#else
#define pgnw_qualified_name_list(s) stringToQualifiedNameList(s)
#endif

/*
 * This backend's PGPROC number (latches, reply mailboxes).  17 dropped
 * PGPROC.pgprocno for the global MyProcNumber.  Needs storage/proc.h.
 */
#if PG_VERSION_NUM >= 170000
#define pgnw_my_procno() ((int) MyProcNumber)
#else
#define pgnw_my_procno() (MyProc->pgprocno)
#endif

/*
 * Every GUC variable, for undoing database and role settings in a worker.
 * 16 made get_guc_variables() return the count.  Needs utils/guc_tables.h.
 */
#if PG_VERSION_NUM >= 160000
#define pgnw_guc_variables(n) get_guc_variables(n)
#else
#define pgnw_guc_variables(n) (*(n) = GetNumConfigOptions(), get_guc_variables())
#endif

/*
 * A wait event with a name of the extension's own (shown in pg_stat_activity
 * and pg_wait_events): 17 added WaitEventExtensionNew; before, all waits of
 * extensions are the anonymous PG_WAIT_EXTENSION.  Needs utils/wait_event.h.
 */
#if PG_VERSION_NUM >= 170000
#define pgnw_wait_event_new(name) WaitEventExtensionNew(name)
#else
#define pgnw_wait_event_new(name) ((void) (name), PG_WAIT_EXTENSION)
#endif

/*
 * 17 gave wait event sets a resource owner, which releases them on error;
 * the runtime's set lives as long as the process (NULL: no owner).  18 moved
 * the declaration to storage/waiteventset.h, which storage/latch.h includes.
 */
#if PG_VERSION_NUM >= 170000
#define pgnw_create_wait_event_set(nevents) CreateWaitEventSet(NULL, (nevents))
#else
#define pgnw_create_wait_event_set(nevents) CreateWaitEventSet(TopMemoryContext, (nevents))
#endif

/*
 * 16 folded pg_database_aclcheck() and its siblings into object_aclcheck();
 * callers include utils/acl.h and catalog/pg_database.h.
 */
#if PG_VERSION_NUM >= 160000
#define pgnw_database_aclcheck(db, role, mode) object_aclcheck(DatabaseRelationId, (db), (role), (mode))
#else
#define pgnw_database_aclcheck(db, role, mode) pg_database_aclcheck((db), (role), (mode))
#endif

#endif							/* PGNW_COMPAT_H */
