#!/usr/bin/env bash
# scripts/node-env.sh — locate the Node 18 runtime (libnode108) to build against.
#
# Prints shell assignments, for `eval "$(bash scripts/node-env.sh)"`:
#   NODE_ROUTE=system|private
#   NODE_INCLUDE=<dir holding node.h of Node 18>
#   NODE_LIBDIR=<dir holding libnode.so.108>
#   NODE_PREFIX=<private prefix, empty on the system route>
#   NODE_VERSION=<x.y.z from node_version.h>
# With --make, prints the same as bare KEY=value words on one line (for the top-level Makefile).
#
# System route: Debian's libnode-dev/libnode108 (/usr/include/node/node_version.h says major 18 and
# libnode.so.108 is in the multiarch lib dir). Private route: <repo>/.deps/libnode, populated by
# `make deps` (scripts/deps.sh) when the machine's nodejs is another vendor's.
# Exits 1 with a message on stderr when neither is usable.
set -euo pipefail

REQUIRED_MAJOR=18
SONAME=libnode.so.108

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
private_prefix="$repo/.deps/libnode"

mode=shell
case "${1:-}" in
  --make) mode="make" ;;
  ""|--shell) ;;
  -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# version_of <node_version.h>: prints x.y.z, or nothing if unreadable
version_of() {
  local h=$1 maj min pat
  [ -r "$h" ] || return 0
  maj=$(sed -n 's/^#define NODE_MAJOR_VERSION \([0-9][0-9]*\).*/\1/p' "$h" | head -n1)
  min=$(sed -n 's/^#define NODE_MINOR_VERSION \([0-9][0-9]*\).*/\1/p' "$h" | head -n1)
  pat=$(sed -n 's/^#define NODE_PATCH_VERSION \([0-9][0-9]*\).*/\1/p' "$h" | head -n1)
  [ -n "$maj" ] && [ -n "$min" ] && [ -n "$pat" ] && printf '%s.%s.%s\n' "$maj" "$min" "$pat"
  return 0
}

MA=$(multiarch)

route="" include="" libdir="" prefix="" version=""
notes=()

# 1. system route
sys_inc=/usr/include/node
sys_lib=/usr/lib/$MA
sys_ver=$(version_of "$sys_inc/node_version.h")
if [ "${sys_ver%%.*}" = "$REQUIRED_MAJOR" ] && [ -e "$sys_lib/$SONAME" ]; then
  route=system include=$sys_inc libdir=$sys_lib prefix="" version=$sys_ver
else
  if [ -n "$sys_ver" ] && [ "${sys_ver%%.*}" != "$REQUIRED_MAJOR" ]; then
    notes+=("$sys_inc holds Node $sys_ver headers (not Node $REQUIRED_MAJOR; e.g. another vendor's nodejs): not used")
  elif [ -n "$sys_ver" ]; then
    notes+=("$sys_inc holds Node $sys_ver headers but $sys_lib/$SONAME is missing")
  fi
  # 2. private route
  p_inc=$private_prefix/usr/include/node
  p_lib=$private_prefix/usr/lib/$MA
  p_ver=$(version_of "$p_inc/node_version.h")
  if [ "${p_ver%%.*}" = "$REQUIRED_MAJOR" ] && [ -e "$p_lib/$SONAME" ]; then
    route=private include=$p_inc libdir=$p_lib prefix=$private_prefix version=$p_ver
  elif [ -d "$private_prefix" ]; then
    notes+=("$private_prefix is incomplete (node_version.h: ${p_ver:-missing}, $SONAME: $([ -e "$p_lib/$SONAME" ] && echo present || echo missing))")
  fi
fi

if [ -z "$route" ]; then
  {
    echo "pg_node_worker: no Node $REQUIRED_MAJOR runtime (libnode108 + headers) found."
    for n in "${notes[@]+"${notes[@]}"}"; do echo "  - $n"; done
    echo "  Looked for: $sys_inc/node_version.h (major $REQUIRED_MAJOR) + $sys_lib/$SONAME (system route),"
    echo "              $private_prefix/usr/include/node + .../usr/lib/$MA/$SONAME (private route)."
    echo "  Run \`make deps\` (as root, or see what it prints) to install it."
  } >&2
  exit 1
fi

if [ "$route" = private ]; then
  # libnode108 reads these at start-up and aborts without them (deps.sh puts them there).
  for f in /usr/share/nodejs/acorn/dist/acorn.js /usr/share/nodejs/acorn-walk/dist/walk.js \
           /usr/share/nodejs/cjs-module-lexer/lexer.js /usr/share/nodejs/cjs-module-lexer/dist/lexer.js \
           /usr/share/nodejs/undici/undici-fetch.js; do
    if [ ! -e "$f" ]; then
      echo "pg_node_worker: warning: $f is missing; libnode will abort at start-up. Run \`make deps\` as root." >&2
    fi
  done
fi

if [ "$mode" = make ]; then
  for v in "$include" "$libdir" "$prefix"; do
    case "$v" in *[[:space:]]*) echo "node-env.sh: path '$v' contains whitespace; make cannot handle it" >&2; exit 1 ;; esac
  done
  printf 'NODE_ROUTE=%s NODE_INCLUDE=%s NODE_LIBDIR=%s NODE_PREFIX=%s NODE_VERSION=%s\n' \
    "$route" "$include" "$libdir" "$prefix" "$version"
else
  printf 'NODE_ROUTE=%q\nNODE_INCLUDE=%q\nNODE_LIBDIR=%q\nNODE_PREFIX=%q\nNODE_VERSION=%q\n' \
    "$route" "$include" "$libdir" "$prefix" "$version"
fi
