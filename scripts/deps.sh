#!/usr/bin/env bash
# scripts/deps.sh — install what pg_node_worker needs to build and run (run by `make deps`).
#
#   bash scripts/deps.sh           install what is missing (as root), or print the commands (not root)
#   bash scripts/deps.sh --check   only report; exit 1 if something is missing (`make check-deps`)
#
# Environment: PG_CONFIG (default pg_config), PGNW_NODE_ROUTE=private to force the private route.
#
# What it checks/installs (idempotent; a second run only checks):
#   - postgresql-server-dev-<major of pg_config>   if `pg_config --pgxs` is missing
#   - build-essential g++ make python3             if a compiler/make/python3 is missing
#   - libuv1-dev
#   - the Node 18 runtime (libnode108), see docs/DESIGN.md "Runtime dependency":
#       system route  (Debian's nodejs, or no nodejs package): apt-get install libnode-dev
#       private route (another vendor's nodejs, e.g. nodesource): apt-get download + dpkg -x into
#                     .deps/libnode, fix dangling symlinks, copy acorn, acorn-walk,
#                     cjs-module-lexer, undici into /usr/share/nodejs when absent
#   - npm packages (npm ci) if node_modules is missing (also done when not root: it needs no privilege)
set -euo pipefail

REQUIRED_NODE_MAJOR=18
SONAME=libnode.so.108
PRIVATE_DEBS=(libnode108 libnode-dev libc-ares2 node-acorn node-cjs-module-lexer node-undici node-busboy node-xtend)
# Directories libnode108 reads from /usr/share/nodejs at start-up (it aborts without them);
# undici-types only makes undici/types (a symlink) resolve.
SHARE_DIRS=(acorn acorn-walk cjs-module-lexer undici)
SHARE_EXTRA_DIRS=(undici-types)
SHARE_FILES=(/usr/share/nodejs/cjs-module-lexer/lexer.js /usr/share/nodejs/cjs-module-lexer/dist/lexer.js
             /usr/share/nodejs/undici/undici-fetch.js /usr/share/nodejs/acorn/dist/acorn.js
             /usr/share/nodejs/acorn-walk/dist/walk.js)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
prefix=$repo/.deps/libnode
PG_CONFIG=${PG_CONFIG:-pg_config}
export DEBIAN_FRONTEND=noninteractive

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "deps.sh: unknown option '$1'" >&2; exit 2 ;;
esac
is_root=0; [ "$(id -u)" = 0 ] && is_root=1
# act=1: run the commands; act=0: only report / print them
act=0; [ $is_root = 1 ] && [ $check_only = 0 ] && act=1

say()  { printf 'deps: %s\n' "$*"; }
warn() { printf 'deps: warning: %s\n' "$*" >&2; }
die()  { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

missing=()    # what is missing (descriptions)
todo=()       # commands a root user has to run (printed when we cannot run them)
did=()        # what this run changed

need() { missing+=("$1"); }
plan() { todo+=("$1"); }

multiarch() {
  local ma=""
  command -v dpkg-architecture >/dev/null 2>&1 && ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
  [ -z "$ma" ] && command -v gcc >/dev/null 2>&1 && ma=$(gcc -print-multiarch 2>/dev/null || true)
  [ -z "$ma" ] && ma="$(uname -m)-linux-gnu"
  printf '%s\n' "$ma"
}
MA=$(multiarch)

pkg_installed() {  # dpkg status "?i" (installed; also held)
  local s
  s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true)
  [ "${s:1:1}" = i ]
}

node_h_version() {  # x.y.z from a node_version.h, or nothing
  local h=$1 maj min pat
  [ -r "$h" ] || return 0
  maj=$(sed -n 's/^#define NODE_MAJOR_VERSION \([0-9][0-9]*\).*/\1/p' "$h" | head -n1)
  min=$(sed -n 's/^#define NODE_MINOR_VERSION \([0-9][0-9]*\).*/\1/p' "$h" | head -n1)
  pat=$(sed -n 's/^#define NODE_PATCH_VERSION \([0-9][0-9]*\).*/\1/p' "$h" | head -n1)
  [ -n "$maj" ] && [ -n "$min" ] && [ -n "$pat" ] && printf '%s.%s.%s\n' "$maj" "$min" "$pat"
  return 0
}

# ---------------------------------------------------------------------------------------------
# apt helpers: `apt-get update` only when the lists are empty, or when an install/download failed
# for lack of lists (unknown package, no candidate, 404 on a stale list); at most once per run.
apt_updated=0
apt_lists_empty() { ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }
apt_update_once() {
  [ $apt_updated = 1 ] && return 0
  say "+ apt-get update"
  apt-get update -q
  apt_updated=1
}
apt_get() {  # apt_get <apt-get args...>
  local log rc=0
  apt_lists_empty && apt_update_once
  log=$(mktemp)
  say "+ apt-get $*"
  apt-get "$@" >"$log" 2>&1 || rc=$?
  if [ $rc != 0 ] && [ $apt_updated = 0 ] &&
     grep -Eq "Unable to locate package|has no installation candidate|Failed to fetch|404 +Not Found|Can't select (candidate )?version|is not available|no longer available" "$log"; then
    cat "$log"
    say "apt-get failed for lack of (fresh) package lists; updating them and retrying"
    apt_update_once
    rc=0
    apt-get "$@" >"$log" 2>&1 || rc=$?
  fi
  # keep the output short unless it failed
  if [ $rc != 0 ]; then cat "$log" >&2; else grep -Ev '^(Reading|Building|Selecting|Preparing|Unpacking|\(Reading)' "$log" | tail -n 15 || true; fi
  rm -f "$log"
  return $rc
}

apt_pkgs=()
want_pkg() {  # want_pkg <package> <why>
  local p
  for p in "${apt_pkgs[@]+"${apt_pkgs[@]}"}"; do [ "$p" = "$1" ] && return 0; done
  apt_pkgs+=("$1")
  need "$1 ($2)"
}

# ---------------------------------------------------------------------------------------------
# 1. PostgreSQL server headers (PGXS)
pg_major=""
if command -v "$PG_CONFIG" >/dev/null 2>&1; then
  pg_version=$("$PG_CONFIG" --version)
  pg_major=$(printf '%s\n' "$pg_version" | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
  [ -n "$pg_major" ] || die "cannot parse the major version from '$PG_CONFIG --version': $pg_version"
  pgxs=$("$PG_CONFIG" --pgxs 2>/dev/null || true)
  if [ -n "$pgxs" ] && [ -f "$pgxs" ] && [ -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ]; then
    say "ok: PostgreSQL $pg_major server headers + PGXS ($pgxs)"
  else
    want_pkg "postgresql-server-dev-$pg_major" "PGXS for $PG_CONFIG ($pg_version)"
  fi
else
  # no pg_config at all: pick the newest installed server
  srv=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n1 || true)
  if [ -n "$srv" ]; then
    pg_major=$(basename "$(dirname "$(dirname "$srv")")")
    want_pkg "postgresql-server-dev-$pg_major" "no '$PG_CONFIG' found; server $pg_major is installed"
    say "note: then build with PG_CONFIG=/usr/lib/postgresql/$pg_major/bin/pg_config (or /usr/bin/pg_config)"
  else
    die "no '$PG_CONFIG' and no PostgreSQL server under /usr/lib/postgresql: install the server (e.g. apt-get install postgresql-15 postgresql-server-dev-15) or set PG_CONFIG"
  fi
fi

# 2. tool chain
tc_missing=()
for c in cc g++ make python3; do command -v "$c" >/dev/null 2>&1 || tc_missing+=("$c"); done
if [ ${#tc_missing[@]} -gt 0 ]; then
  for p in build-essential g++ make python3; do pkg_installed "$p" || want_pkg "$p" "missing: ${tc_missing[*]}"; done
else
  say "ok: cc, g++, make, python3"
fi

# 3. libuv (headers for node.h's uv.h; libuv1 runtime for libnode)
if pkg_installed libuv1-dev; then say "ok: libuv1-dev"; else want_pkg libuv1-dev "uv.h, included by node.h"; fi

# 4. which nodejs is installed, which route
nodejs_vendor=none nodejs_version=""
if pkg_installed nodejs; then
  nodejs_version=$(dpkg-query -W -f='${Version}' nodejs)
  nodejs_maint=$(dpkg-query -W -f='${Maintainer}' nodejs)
  if printf '%s' "$nodejs_maint" | grep -qi debian && ! printf '%s' "$nodejs_version" | grep -qi nodesource; then
    nodejs_vendor=debian
  else
    nodejs_vendor=other
  fi
fi
route=system
[ "$nodejs_vendor" = other ] && route=private
if [ "${PGNW_NODE_ROUTE:-}" = private ]; then route=private
elif [ -n "${PGNW_NODE_ROUTE:-}" ] && [ "${PGNW_NODE_ROUTE}" != system ]; then die "PGNW_NODE_ROUTE must be 'system' or 'private'"; fi
if [ "$route" = system ] && [ "${PGNW_NODE_ROUTE:-}" = system ] && [ "$nodejs_vendor" = other ]; then
  die "PGNW_NODE_ROUTE=system, but nodejs $nodejs_version is another vendor's: Debian's libnode-dev cannot be installed next to it"
fi
case $nodejs_vendor in
  none)   say "nodejs package: not installed -> system route (Debian's libnode-dev)";;
  debian) say "nodejs package: Debian's $nodejs_version -> system route (Debian's libnode-dev)";;
  other)  say "nodejs package: $nodejs_version (not Debian's: $nodejs_maint) -> private route ($prefix)";;
esac

sys_runtime_ok() {
  local v; v=$(node_h_version /usr/include/node/node_version.h)
  [ "${v%%.*}" = "$REQUIRED_NODE_MAJOR" ] && [ -e "/usr/lib/$MA/$SONAME" ]
}

if [ "$route" = system ]; then
  if sys_runtime_ok; then
    say "ok: Node $(node_h_version /usr/include/node/node_version.h) headers in /usr/include/node, /usr/lib/$MA/$SONAME"
  else
    want_pkg libnode-dev "Node $REQUIRED_NODE_MAJOR headers + $SONAME (system route)"
  fi
fi

# npm (for npm ci / the build tools): comes with the other vendor's nodejs; Debian ships it apart
if ! command -v npm >/dev/null 2>&1; then
  if [ "$nodejs_vendor" = other ]; then
    need "npm (the installed nodejs $nodejs_version has none)"
    plan "install npm from the vendor of nodejs $nodejs_version"
  else
    want_pkg npm "to install the project's npm packages"
  fi
fi

# ---------------------------------------------------------------------------------------------
# apt installs (one apt-get call)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  cmd="apt-get install -y --no-install-recommends ${apt_pkgs[*]}"
  if [ $act = 1 ]; then
    apt_get install -y --no-install-recommends "${apt_pkgs[@]}" || die "apt-get install ${apt_pkgs[*]} failed"
    did+=("installed ${apt_pkgs[*]}")
  else
    plan "$cmd"
  fi
fi
if [ "$route" = system ] && [ $act = 1 ] && ! sys_runtime_ok; then
  die "libnode-dev is installed but /usr/include/node/node_version.h is not Node $REQUIRED_NODE_MAJOR or /usr/lib/$MA/$SONAME is missing"
fi

# ---------------------------------------------------------------------------------------------
# 5. private route
p_lib=$prefix/usr/lib/$MA
p_inc=$prefix/usr/include/node

private_problems() {  # prints one line per problem of the extracted prefix; nothing = fine
  local v l
  v=$(node_h_version "$p_inc/node_version.h")
  [ -n "$v" ] || { echo "$p_inc/node_version.h missing"; return 0; }
  [ "${v%%.*}" = "$REQUIRED_NODE_MAJOR" ] || echo "$p_inc/node_version.h is Node $v, not $REQUIRED_NODE_MAJOR"
  [ -f "$p_lib/$SONAME" ] || echo "$p_lib/$SONAME missing"
  [ -e "$p_lib/libcares.so.2" ] || echo "$p_lib/libcares.so.2 missing"
  [ -e "$p_lib/libuv.so" ] || echo "$p_lib/libuv.so missing or dangling"
  while IFS= read -r l; do
    [ -n "$l" ] && echo "dangling symlink $l -> $(readlink "$l")"
  done < <(find "$prefix/usr/include" "$prefix/usr/lib" -xtype l 2>/dev/null)
  if [ -f "$p_lib/$SONAME" ]; then
    LD_LIBRARY_PATH=$p_lib ldd "$p_lib/$SONAME" 2>/dev/null | sed -n 's/^[[:space:]]*\(.*not found\)/ldd libnode: \1/p'
  fi
  return 0
}

share_missing() {  # prints the /usr/share/nodejs files libnode needs that are missing
  local f
  for f in "${SHARE_FILES[@]}"; do [ -e "$f" ] || echo "$f"; done
}

extract_private() {
  local tmp staging deb l t sys v deps d
  tmp=$(mktemp -d /tmp/pgnw-deps.XXXXXX)
  # apt-get download runs as _apt (sandbox) when root: give it the directory
  chmod 755 "$tmp"
  if getent passwd _apt >/dev/null 2>&1; then chown _apt "$tmp"; else chmod 777 "$tmp"; fi
  ( cd "$tmp" && apt_get download "${PRIVATE_DEBS[@]}" ) || { rm -rf "$tmp"; die "apt-get download ${PRIVATE_DEBS[*]} failed"; }
  for d in "${PRIVATE_DEBS[@]}"; do
    compgen -G "$tmp/${d}_*.deb" >/dev/null || { rm -rf "$tmp"; die "apt-get download did not produce $d"; }
  done

  # runtime libraries libnode108 links (other than the ones extracted here)
  deps=$(dpkg-deb -f "$tmp"/libnode108_*.deb Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' | grep -v '^$' || true)
  local rt_missing=()
  for d in $deps; do
    case " ${PRIVATE_DEBS[*]} " in *" $d "*) continue;; esac
    pkg_installed "$d" || rt_missing+=("$d")
  done
  if [ ${#rt_missing[@]} -gt 0 ]; then
    apt_get install -y --no-install-recommends "${rt_missing[@]}" || die "apt-get install ${rt_missing[*]} failed"
    did+=("installed libnode108's runtime dependencies ${rt_missing[*]}")
  fi

  staging=$prefix.new
  rm -rf "$staging"; mkdir -p "$staging"
  for deb in "$tmp"/*.deb; do
    say "+ dpkg -x $(basename "$deb") ${staging#"$repo"/}"
    dpkg -x "$deb" "$staging"
  done
  ( cd "$tmp" && for deb in *.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done ) >"$staging/.pgnw-packages"
  rm -rf "$tmp"

  v=$(node_h_version "$staging/usr/include/node/node_version.h")
  [ "${v%%.*}" = "$REQUIRED_NODE_MAJOR" ] || die "downloaded libnode-dev is Node '${v:-?}', not $REQUIRED_NODE_MAJOR.x"
  [ -f "$staging/usr/lib/$MA/$SONAME" ] || die "downloaded libnode108 has no usr/lib/$MA/$SONAME"

  # Relative symlinks that point outside the packages (libnode-dev's deps/uv/include/{uv,uv.h} ->
  # ../../../../uv*) dangle in the prefix: point them at the same path on the system.
  while IFS= read -r l; do
    t=$(readlink "$l")
    case $t in
      /*) sys=$t ;;
      *)  sys=$(realpath -m "$(dirname "/${l#"$staging"/}")/$t") ;;
    esac
    if [ -e "$sys" ]; then
      ln -sfn "$sys" "$l"
      say "fixed dangling symlink ${l#"$staging"/} -> $sys"
    else
      warn "dangling symlink ${l#"$staging"/} -> $t (no $sys on this system)"
    fi
  done < <(find "$staging" -xtype l)
  # the linker's libuv.so: the system libuv1 runtime
  [ -e "/usr/lib/$MA/libuv.so.1" ] || die "/usr/lib/$MA/libuv.so.1 missing (install libuv1)"
  ln -sfn "/usr/lib/$MA/libuv.so.1" "$staging/usr/lib/$MA/libuv.so"
  say "linked ${staging#"$repo"/}/usr/lib/$MA/libuv.so -> /usr/lib/$MA/libuv.so.1"

  rm -rf "$prefix"
  mv "$staging" "$prefix"
  did+=("extracted Node $v (libnode108) into ${prefix#"$repo"/}")
}

copy_share_dirs() {
  local d
  mkdir -p /usr/share/nodejs
  for d in "${SHARE_DIRS[@]}" "${SHARE_EXTRA_DIRS[@]}"; do
    if [ -e "/usr/share/nodejs/$d" ] || [ -L "/usr/share/nodejs/$d" ]; then
      continue  # never overwrite
    fi
    [ -d "$prefix/usr/share/nodejs/$d" ] || die "$prefix/usr/share/nodejs/$d missing (re-run after rm -rf $prefix)"
    say "+ cp -a ${prefix#"$repo"/}/usr/share/nodejs/$d /usr/share/nodejs/"
    cp -a "$prefix/usr/share/nodejs/$d" /usr/share/nodejs/
    did+=("copied /usr/share/nodejs/$d")
  done
}

if [ "$route" = private ]; then
  probs=$(private_problems)
  if [ -z "$probs" ]; then
    say "ok: Node $(node_h_version "$p_inc/node_version.h") (libnode108) in ${prefix#"$repo"/}"
  else
    need "private libnode in ${prefix#"$repo"/}: $(printf '%s' "$probs" | paste -sd';' | sed 's/;/; /g')"
    if [ $act = 1 ]; then
      extract_private
      probs=$(private_problems)
      [ -z "$probs" ] || die "private libnode still incomplete: $probs"
    else
      q=$(printf '%q' "$prefix")
      plan "tmp=\$(mktemp -d) && chmod 777 \"\$tmp\" && (cd \"\$tmp\" && apt-get download ${PRIVATE_DEBS[*]}) && rm -rf $q && mkdir -p $q && for d in \"\$tmp\"/*.deb; do dpkg -x \"\$d\" $q; done && rm -rf \"\$tmp\""
      plan "ln -sfn /usr/include/uv.h $q/usr/include/nodejs/deps/uv/include/uv.h && ln -sfn /usr/include/uv $q/usr/include/nodejs/deps/uv/include/uv && ln -sfn /usr/lib/$MA/libuv.so.1 $q/usr/lib/$MA/libuv.so"
    fi
  fi
  sm=$(share_missing)
  if [ -n "$sm" ]; then
    need "files libnode108 loads at start-up: $(printf '%s' "$sm" | paste -sd' ')"
    if [ $act = 1 ]; then
      copy_share_dirs
      sm=$(share_missing)
      [ -z "$sm" ] || die "still missing after copying (an existing /usr/share/nodejs dir lacks them; not overwritten): $sm"
    else
      for d in "${SHARE_DIRS[@]}" "${SHARE_EXTRA_DIRS[@]}"; do
        [ -e "/usr/share/nodejs/$d" ] || plan "mkdir -p /usr/share/nodejs && cp -a $(printf '%q' "$prefix")/usr/share/nodejs/$d /usr/share/nodejs/"
      done
    fi
  else
    say "ok: /usr/share/nodejs/{${SHARE_DIRS[*]// /,}} (libnode's start-up builtins)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 6. npm packages (no privilege needed: also done when not root, unless --check)
if [ -d "$repo/node_modules" ]; then
  say "ok: node_modules"
else
  need "node_modules (npm ci)"
  if [ $check_only = 0 ] && command -v npm >/dev/null 2>&1; then
    say "+ npm ci (in $repo)"
    ( cd "$repo" && npm ci --no-audit --no-fund ) || die "npm ci failed"
    did+=("npm ci")
  else
    plan "cd $(printf '%q' "$repo") && npm ci"
  fi
fi

# the build/test tools (vitest 3 with vite 7, node-gyp 11) need a recent node to *run*; this is
# independent of the Node 18 that is embedded
if command -v node >/dev/null 2>&1; then
  nv=$(node -p 'process.versions.node' 2>/dev/null || echo 0.0.0)
  say "ok: node $nv (runs the build and test tools)"
fi

# ---------------------------------------------------------------------------------------------
if [ ${#todo[@]} -gt 0 ]; then
  echo
  if [ $check_only = 1 ]; then
    echo "deps: missing:"
  elif [ $is_root = 0 ]; then
    echo "deps: not root: cannot install. Missing:"
  else
    echo "deps: cannot install automatically. Missing:"
  fi
  for m in "${missing[@]}"; do echo "  - $m"; done
  echo "Run \`sudo make deps\` (or \`sudo bash scripts/deps.sh\`), or these commands as root:"
  for c in "${todo[@]}"; do echo "  $c"; done
  exit 1
fi
if [ ${#did[@]} -gt 0 ]; then
  say "done:"
  for d in "${did[@]}"; do echo "  - $d"; done
  exit 0
fi
say "everything is present (route: $route)"
