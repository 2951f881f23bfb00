/*-------------------------------------------------------------------------
 *
 * log.h
 *		The server log, settings and the ps display, as plain C for the
 *		bridge (log.cc).  Implemented in log_ops.c through the guard of
 *		guard.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_LOG_H
#define PGNW_LOG_H

#include "contract.h"
#include "guard.h"

#ifdef __cplusplus
extern "C"
{
#endif

/* one line in the server log, prefixed with the worker's name; level: PGNW_LOG_* */
extern bool pgnw_log(int level, const char *msg, PgnwError *err);
/* the setting's value (malloc'd) or NULL when there is no such setting */
extern bool pgnw_get_setting(const char *name, char **value, PgnwError *err);
extern bool pgnw_set_ps_display(const char *text, PgnwError *err);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_LOG_H */
