#!/usr/bin/env bash
# scripts/node-env.sh — locate the Node runtime (libnode + its headers) to build against.
#
# Prints shell assignments, for `eval "$(bash scripts/node-env.sh)"`:
#   NODE_ROUTE=system|private|prefix
#   NODE_INCLUDE=<dir holding node.h>
#   NODE_LIBDIR=<dir holding libnode.so.N>
#   NODE_PREFIX=<the prefix, empty on the system route>
#   NODE_VERSION=<x.y.z from node_version.h>
#   NODE_MAJOR=<18|20|22|24>
#   NODE_SONAME=<libnode.so.N: N is NODE_MODULE_VERSION, as Debian names the library>
#   NODE_CXXSTD=<the C++ standard its headers need: c++17, or c++20 from Node 24 on>
#   NODE_SNAPSHOT=<1 when libnode carries Node's built-in start-up snapshot (its config.gypi says
#                 node_use_node_snapshot), else 0>
# With --make, prints the same as bare KEY=value words on one line (for the top-level Makefile).
#
# Routes, in this order:
#   prefix   PGNW_NODE_PREFIX=<dir> names a prefix with include/node (or usr/include/node) and
#            libnode.so.N in lib/ (or usr/lib/<multiarch>): a libnode that is not the system's
#            (sid's libnode127, which has no -dev package and cannot be installed beside Node 24)
#   system   Debian's libnode-dev: /usr/include/node and /usr/lib/<multiarch>/libnode.so.N
#   private  <repo>/.deps/libnode, populated by `make deps` (scripts/deps.sh) when the machine's
#            nodejs is another vendor's (Debian's libnode-dev cannot be installed beside it)
# Supported Node majors: see SUPPORTED_MAJORS. Exits 1 with one line naming what was found and
# what is supported when no usable runtime is found.
set -euo pipefail

SUPPORTED_MAJORS="18 20 22 24"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
private_prefix="$repo/.deps/libnode"

mode=shell
case "${1:-}" in
  --make) mode="make" ;;
  ""|--shell) ;;
  -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "node-env.sh: unknown option '$1' (use --make or nothing)" >&2; exit 2 ;;
esac

multiarch() {
  local ma=""
  if command -v dpkg-architecture >/dev/null 2>&1; then
    ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
  fi
  if [ -z "$ma" ] && command -v gcc >/dev/null 2>&1; then
    ma=$(gcc -print-multiarch 2>/dev/null || true)
  fi
  if [ -z "$ma" ]; then
    ma="$(uname -m)-linux-gnu"
  fi
  printf '%s\n' "$ma"
}

# define_of <node_version.h> <NAME>: the number #defined as NAME, or nothing
define_of() {
  [ -r "$1" ] || return 0
  sed -n "s/^#define $2 \\([0-9][0-9]*\\).*/\\1/p" "$1" | head -n1
}

# version_of <node_version.h>: prints x.y.z, or nothing if unreadable
version_of() {
  local maj min pat
  maj=$(define_of "$1" NODE_MAJOR_VERSION)
  min=$(define_of "$1" NODE_MINOR_VERSION)
  pat=$(define_of "$1" NODE_PATCH_VERSION)
  [ -n "$maj" ] && [ -n "$min" ] && [ -n "$pat" ] && printf '%s.%s.%s\n' "$maj" "$min" "$pat"
  return 0
}

supported() { case " $SUPPORTED_MAJORS " in *" $1 "*) return 0 ;; esac; return 1; }

MA=$(multiarch)

route="" include="" libdir="" prefix="" version="" soname=""
notes=()

# try <route> <include dir> <lib dir> <prefix>: take this runtime if it is complete and supported
try() {
  local inc=$2 lib=$3 ver abi so
  ver=$(version_of "$inc/node_version.h")
  [ -n "$ver" ] || return 1
  abi=$(define_of "$inc/node_version.h" NODE_MODULE_VERSION)
  so=libnode.so.$abi
  if ! supported "${ver%%.*}"; then
    notes+=("$inc holds Node $ver headers: this runtime supports Node $(echo "$SUPPORTED_MAJORS" | sed 's/ /, /g')")
    return 1
  fi
  if [ ! -e "$lib/$so" ]; then
    notes+=("$inc holds Node $ver headers but $lib/$so is missing")
    return 1
  fi
  route=$1 include=$inc libdir=$lib prefix=$4 version=$ver soname=$so
}

if [ -n "${PGNW_NODE_PREFIX:-}" ]; then
  p=$PGNW_NODE_PREFIX
  try prefix "$p/include/node" "$p/lib" "$p" ||
    try prefix "$p/usr/include/node" "$p/usr/lib/$MA" "$p" ||
    notes+=("PGNW_NODE_PREFIX=$p has no usable include/node + libnode.so.N")
else
  try system /usr/include/node "/usr/lib/$MA" "" ||
    try private "$private_prefix/usr/include/node" "$private_prefix/usr/lib/$MA" "$private_prefix" ||
    true
fi

if [ -z "$route" ]; then
  {
    echo "pg_node_worker: no supported Node runtime (libnode + headers) found; supported: Node $(echo "$SUPPORTED_MAJORS" | sed 's/ /, /g')."
    for n in "${notes[@]+"${notes[@]}"}"; do echo "  - $n"; done
    echo "  Looked for: /usr/include/node + /usr/lib/$MA/libnode.so.N (system route),"
    echo "              $private_prefix (private route), \$PGNW_NODE_PREFIX (a prefix of your own)."
    echo "  Run \`make deps\` (as root, or see what it prints) to install it."
  } >&2
  exit 1
fi

major=${version%%.*}
snapshot=0
grep -Eq "[\"']node_use_node_snapshot[\"']: *[\"']true[\"']" "$include/config.gypi" 2>/dev/null && snapshot=1
cxxstd=c++17
[ "$major" -ge 24 ] && cxxstd=c++20   # V8 13's headers need C++20

if [ "$route" != system ]; then
  # libnode reads these at start-up and aborts without them (deps.sh puts them there)
  for f in $(bash "$repo/scripts/node-builtins.sh" "$major"); do
    if [ ! -e "$f" ]; then
      echo "pg_node_worker: warning: $f is missing; libnode will abort at start-up. Run \`make deps\` as root." >&2
    fi
  done
fi

if [ "$mode" = make ]; then
  for v in "$include" "$libdir" "$prefix"; do
    case "$v" in *[[:space:]]*) echo "node-env.sh: path '$v' contains whitespace; make cannot handle it" >&2; exit 1 ;; esac
  done
  printf 'NODE_ROUTE=%s NODE_INCLUDE=%s NODE_LIBDIR=%s NODE_PREFIX=%s NODE_VERSION=%s NODE_MAJOR=%s NODE_SONAME=%s NODE_CXXSTD=%s NODE_SNAPSHOT=%s\n' \
    "$route" "$include" "$libdir" "$prefix" "$version" "$major" "$soname" "$cxxstd" "$snapshot"
else
  printf 'NODE_ROUTE=%q\nNODE_INCLUDE=%q\nNODE_LIBDIR=%q\nNODE_PREFIX=%q\nNODE_VERSION=%q\nNODE_MAJOR=%q\nNODE_SONAME=%q\nNODE_CXXSTD=%q\nNODE_SNAPSHOT=%q\n' \
    "$route" "$include" "$libdir" "$prefix" "$version" "$major" "$soname" "$cxxstd" "$snapshot"
fi
