/*
 * addon.cc — the bridge's C++ files, compiled as one translation unit.
 *
 * Each of them includes napi.h (node-addon-api: inline templates throughout)
 * and several V8's headers; parsing and optimising those was nearly all of
 * each file's compile time, paid once per file: 33 s of CPU for the nine
 * files as nine units, 5 s as this one (Node 18's headers, -O3).  The files
 * stay apart for reading and own their concerns (see bridge.cc); as one unit
 * they must not define the same name at file scope, anonymous namespaces
 * included, which the compiler reports.  The C files (the PostgreSQL side)
 * are compiled on their own.
 */
#include "bridge.cc"
#include "buffers.cc"
#include "control.cc"
#include "convert.cc"
#include "log.cc"
#include "messaging.cc"
#include "process.cc"
#include "shared.cc"
#include "sql.cc"
