/*-------------------------------------------------------------------------
 *
 * runtime_all.cc
 *		The runtime's C++ files, compiled as one translation unit.
 *
 * Each of them includes node.h, and with it V8's and libuv's headers:
 * parsing those was most of each file's compile time, paid once per file
 * (9 s of CPU for the five files as five units, 3 s as this one, Node 18's
 * headers).  The files stay apart for reading and keep their order of
 * modules (see runtime.cc); as one unit they must not define the same name
 * at file scope, which the compiler reports.
 *
 * Each file includes the C and C++ library's and Node's headers before
 * PostgreSQL's (whose port.h redefines printf, snprintf, qsort and more as
 * macros); the headers of every file are included here first, so that none
 * of them is read after PostgreSQL's either.
 *
 * extension/runtime_all.cc
 *
 *-------------------------------------------------------------------------
 */
#include <node.h>
#include <uv.h>

#include <atomic>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime_process.cc"
#include "runtime_signals.cc"
#include "runtime_memory.cc"
#include "runtime_embed.cc"
#include "runtime.cc"
