#!/usr/bin/env bash
# scripts/deps.sh — install what pg_node_worker needs to build and run (run by `make deps`).
#
#   bash scripts/deps.sh           install what is missing (as root), or print the commands (not root)
#   bash scripts/deps.sh --check   only report; exit 1 if something is missing (`make check-deps`)
#
# Environment: PG_CONFIG (default pg_config), PG_MAJOR (the server to install when none is: default
# the release's own, what its `postgresql` package depends on), PGNW_NODE_ROUTE=private to force
# the private route, PGNW_NODE_PREFIX (a libnode of your own: see scripts/node-env.sh).
#
# What it checks/installs (idempotent; a second run only checks):
#   - postgresql-<major> + postgresql-server-dev-<major>  when no server is installed (the release's
#     major, or PG_MAJOR); postgresql-server-dev-<major of pg_config> if `pg_config --pgxs` is missing
#   - build-essential g++ make python3             if a compiler/make/python3 is missing
#   - libuv1-dev
#   - the Node runtime (libnode of Node 18, 20, 22 or 24: whichever the release ships), see
#     docs/DESIGN.md "Runtime dependency":
#       system route  (Debian's nodejs, or no nodejs package): apt-get install libnode-dev
#       private route (another vendor's nodejs, e.g. nodesource): apt-get download libnode-dev, its
#                     libnode and the node-* packages of the files libnode reads at start-up,
#                     dpkg -x into .deps/libnode, fix dangling symlinks, copy those files'
#                     directories into /usr/share/nodejs when absent
#   - npm (Debian's, with Debian's nodejs) and npm packages (npm ci) if node_modules is missing
#     (npm ci is also done when not root: it needs no privilege)
set -euo pipefail

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

# the major of the release's own PostgreSQL: what its `postgresql` metapackage depends on
release_pg_major() {
  apt_lists_empty && [ $act = 1 ] && apt_update_once >&2
  apt-cache depends postgresql 2>/dev/null | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1
}

# ---------------------------------------------------------------------------------------------
# 1. PostgreSQL server and its headers (PGXS)
SUPPORTED_PG="15 16 17 18"
pg_supported() {
  case " $SUPPORTED_PG " in *" $1 "*) return 0 ;; esac
  die "PostgreSQL $1 ($2) is not supported: pg_node_worker supports PostgreSQL ${SUPPORTED_PG// /, } (set PG_CONFIG or PG_MAJOR to one of them)"
}
pg_major=""
if command -v "$PG_CONFIG" >/dev/null 2>&1; then
  pg_version=$("$PG_CONFIG" --version)
  pg_major=$(printf '%s\n' "$pg_version" | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
  [ -n "$pg_major" ] || die "cannot parse the major version from '$PG_CONFIG --version': $pg_version"
  pg_supported "$pg_major" "$PG_CONFIG"
  pgxs=$("$PG_CONFIG" --pgxs 2>/dev/null || true)
  if [ -n "$pgxs" ] && [ -f "$pgxs" ] && [ -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ]; then
    say "ok: PostgreSQL $pg_major server headers + PGXS ($pgxs)"
  else
    want_pkg "postgresql-server-dev-$pg_major" "PGXS for $PG_CONFIG ($pg_version)"
  fi
else
  # no pg_config at all: the newest installed server, or the release's (or PG_MAJOR's) if none
  srv=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n1 || true)
  if [ -n "$srv" ]; then
    pg_major=$(basename "$(dirname "$(dirname "$srv")")")
    pg_supported "$pg_major" "the newest server installed, $srv"
    want_pkg "postgresql-server-dev-$pg_major" "no '$PG_CONFIG' found; server $pg_major is installed"
  else
    pg_major=${PG_MAJOR:-$(release_pg_major)}
    [ -n "$pg_major" ] || die "no PostgreSQL server is installed and apt knows no 'postgresql' package to take its version from: set PG_MAJOR (e.g. PG_MAJOR=15) or install the server"
    pg_supported "$pg_major" "${PG_MAJOR:+PG_MAJOR}${PG_MAJOR:-the postgresql package of this release}"
    want_pkg "postgresql-$pg_major" "no PostgreSQL server is installed: PostgreSQL $pg_major${PG_MAJOR:+ (PG_MAJOR)}"
    want_pkg "postgresql-server-dev-$pg_major" "its PGXS"
  fi
  say "note: then build with PG_CONFIG=/usr/lib/postgresql/$pg_major/bin/pg_config (make test, make install and the CLI find it there)"
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

# 3b. libfaketime: the test suite steps a server's wall clock with it (deadlines must not follow)
if pkg_installed libfaketime; then say "ok: libfaketime"; else want_pkg libfaketime "the tests step a server's wall clock with it"; fi

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

# the runtime node-env.sh finds for a route (its KEY=value words), or nothing
runtime_of() {
  local r
  r=$(PGNW_NODE_PREFIX='' bash "$repo/scripts/node-env.sh" --make 2>/dev/null) || return 0
  case " $r " in *" NODE_ROUTE=$1 "*) printf '%s\n' "$r" ;; esac
}
runtime_field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

if [ -n "${PGNW_NODE_PREFIX:-}" ]; then
  route=prefix
  r=$(bash "$repo/scripts/node-env.sh" --make) || die "PGNW_NODE_PREFIX=$PGNW_NODE_PREFIX: see above"
  say "ok: Node $(runtime_field "$r" NODE_VERSION) in $PGNW_NODE_PREFIX (PGNW_NODE_PREFIX)"
elif [ "$route" = system ]; then
  r=$(runtime_of system)
  if [ -n "$r" ]; then
    say "ok: Node $(runtime_field "$r" NODE_VERSION) headers in /usr/include/node, /usr/lib/$MA/$(runtime_field "$r" NODE_SONAME)"
  else
    want_pkg libnode-dev "the release's Node headers + libnode (system route)"
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
if [ "$route" = system ] && [ $act = 1 ] && [ -z "$(runtime_of system)" ]; then
  bash "$repo/scripts/node-env.sh" >/dev/null || true   # says what was found, and what is supported
  die "libnode-dev is installed, but its Node is not one this runtime supports (see above)"
fi

# ---------------------------------------------------------------------------------------------
# 5. private route: the release's libnode-dev and libnode, unpacked into .deps/libnode
p_lib=$prefix/usr/lib/$MA

private_problems() {  # prints one line per problem of the extracted prefix; nothing = fine
  local r so l
  r=$(runtime_of private)
  [ -n "$r" ] || { echo "no supported libnode + headers in ${prefix#"$repo"/}"; return 0; }
  so=$(runtime_field "$r" NODE_SONAME)
  [ -e "$p_lib/libuv.so" ] || echo "$p_lib/libuv.so missing or dangling"
  while IFS= read -r l; do
    [ -n "$l" ] && echo "dangling symlink $l -> $(readlink "$l")"
  done < <(find "$prefix/usr/include" "$prefix/usr/lib" -xtype l 2>/dev/null)
  LD_LIBRARY_PATH=$p_lib ldd "$p_lib/$so" 2>/dev/null | sed -n 's/^[[:space:]]*\(.*not found\)/ldd libnode: \1/p'
  return 0
}

builtins_missing() {  # prints the /usr/share/nodejs files a libnode of major $1 needs that are missing
  local f
  for f in $(bash "$repo/scripts/node-builtins.sh" "$1"); do [ -e "$f" ] || echo "$f"; done
}

# depends_of <deb>: the package names a .deb depends on (first of each alternative)
depends_of() {
  dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' | grep -v '^$' || true
}

extract_private() {
  local tmp staging deb l t sys v libnode_pkg node_pkgs rt_missing=() d
  tmp=$(mktemp -d /tmp/pgnw-deps.XXXXXX)
  # apt-get download runs as _apt (sandbox) when root: give it the directory
  chmod 755 "$tmp"
  if getent passwd _apt >/dev/null 2>&1; then chown _apt "$tmp"; else chmod 777 "$tmp"; fi
  ( cd "$tmp" && apt_get download libnode-dev ) || { rm -rf "$tmp"; die "apt-get download libnode-dev failed"; }
  libnode_pkg=$(depends_of "$tmp"/libnode-dev_*.deb | grep -E '^libnode[0-9]+$' | head -n1)
  [ -n "$libnode_pkg" ] || { rm -rf "$tmp"; die "libnode-dev depends on no libnodeN package"; }
  ( cd "$tmp" && apt_get download "$libnode_pkg" ) || { rm -rf "$tmp"; die "apt-get download $libnode_pkg failed"; }
  # the node-* packages hold what libnode reads from /usr/share/nodejs at start-up; the rest of
  # its dependencies (libc-ares, libuv, ICU, OpenSSL...) are ordinary libraries, installed as such
  node_pkgs=$(depends_of "$tmp/${libnode_pkg}"_*.deb | grep -E '^node-' || true)
  if [ -n "$node_pkgs" ]; then
    # shellcheck disable=SC2086
    ( cd "$tmp" && apt_get download $node_pkgs ) || { rm -rf "$tmp"; die "apt-get download $node_pkgs failed"; }
  fi
  for d in $(depends_of "$tmp/${libnode_pkg}"_*.deb | grep -Ev '^node-'); do
    pkg_installed "$d" || rt_missing+=("$d")
  done
  if [ ${#rt_missing[@]} -gt 0 ]; then
    apt_get install -y --no-install-recommends "${rt_missing[@]}" || die "apt-get install ${rt_missing[*]} failed"
    did+=("installed $libnode_pkg's runtime dependencies ${rt_missing[*]}")
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
  did+=("extracted Node $v ($libnode_pkg) into ${prefix#"$repo"/}")
}

# copy_builtins <major>: the /usr/share/nodejs directories libnode needs, from the extracted
# packages, where the system has none (never overwritten); undici-types only makes undici/types
# (a symlink) resolve
copy_builtins() {
  local d f
  mkdir -p /usr/share/nodejs
  for d in $( (bash "$repo/scripts/node-builtins.sh" "$1"; echo /usr/share/nodejs/undici-types/x) |
              sed 's|^/usr/share/nodejs/\([^/]*\)/.*|\1|' | sort -u); do
    if [ -e "/usr/share/nodejs/$d" ] || [ -L "/usr/share/nodejs/$d" ]; then
      continue
    fi
    [ -d "$prefix/usr/share/nodejs/$d" ] || { warn "$prefix/usr/share/nodejs/$d missing"; continue; }
    say "+ cp -a ${prefix#"$repo"/}/usr/share/nodejs/$d /usr/share/nodejs/"
    cp -a "$prefix/usr/share/nodejs/$d" /usr/share/nodejs/
    did+=("copied /usr/share/nodejs/$d")
  done
}

if [ "$route" = private ]; then
  probs=$(private_problems)
  if [ -z "$probs" ]; then
    say "ok: Node $(runtime_field "$(runtime_of private)" NODE_VERSION) in ${prefix#"$repo"/}"
  else
    need "private libnode in ${prefix#"$repo"/}: $(printf '%s' "$probs" | paste -sd';' | sed 's/;/; /g')"
    if [ $act = 1 ]; then
      extract_private
      probs=$(private_problems)
      [ -z "$probs" ] || die "private libnode still incomplete: $probs"
    else
      plan "PGNW_NODE_ROUTE=private bash $(printf '%q' "$repo/scripts/deps.sh")   # as root: apt-get download libnode-dev, its libnode and node-* packages; dpkg -x into $(printf '%q' "$prefix")"
    fi
  fi
fi

if [ "$route" = private ] || [ "$route" = prefix ]; then
  r=$(bash "$repo/scripts/node-env.sh" --make 2>/dev/null || true)
  major=$(runtime_field "$r" NODE_MAJOR)
  if [ -n "$major" ]; then
    bm=$(builtins_missing "$major")
    if [ -z "$bm" ]; then
      say "ok: the files libnode of Node $major reads from /usr/share/nodejs at start-up"
    elif [ $act = 1 ] && [ "$route" = private ]; then
      copy_builtins "$major"
      bm=$(builtins_missing "$major")
      [ -z "$bm" ] || die "still missing after copying (an existing /usr/share/nodejs dir lacks them; not overwritten): $bm"
    else
      need "files libnode of Node $major loads at start-up: $(printf '%s' "$bm" | paste -sd' ')"
      plan "install Debian's node-* packages that hold them (apt-get install node-acorn node-undici ...), or copy them into /usr/share/nodejs"
    fi
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

# the build and test tools run on the machine's node (any of the supported majors); this is
# independent of the Node that is embedded
if command -v node >/dev/null 2>&1; then
  nv=$(node -p 'process.versions.node' 2>/dev/null || echo 0.0.0)
  [ "${nv%%.*}" -ge 18 ] || die "node $nv runs the build and test tools; they need Node 18 or later"
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
