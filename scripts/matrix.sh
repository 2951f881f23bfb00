#!/usr/bin/env bash
# scripts/matrix.sh — build and test pg_node_worker in fresh Debian chroots: the PostgreSQL × Node matrix CI runs.
#
#   scripts/matrix.sh [options] [ENV...]     run ENVs (default: all), one summary line each
#   scripts/matrix.sh --shell ENV [-- CMD]   a shell (or CMD) in a freshly prepared chroot of ENV
#   scripts/matrix.sh --shell DIR [-- CMD]   the same in a chroot kept by an earlier --keep (DIR = its root)
#
# ENV (what the release ships; nothing else is added before the README's commands run):
#   bookworm     Debian 12: PostgreSQL 15, Debian's nodejs 18 + npm 9.2, libnode108 (system route)
#   trixie       Debian 13: PostgreSQL 17, nodejs 20.19 + npm 9.2, libnode115
#   sid          Debian unstable: PostgreSQL 18, nodejs 24 + npm 12, libnode137
#   sid-node22   sid with libnode127 (Node 22) as the embedded runtime. sid has no libnode-dev for
#                it and libnode137 Breaks libnode127: a "node22" phase extracts libnode127 into
#                /opt/libnode127 (a private prefix) with headers made from sid's nodejs 22 source
#                package (see docs/matrix-notes.md); the system's nodejs/npm stay 24.
#
# For each ENV:
#   1. base: `debootstrap --variant=minbase --include=make,ca-certificates` of the release (a new
#      user's minimal machine), cached as a tarball in $MATRIX_CACHE (default /var/cache/pgnw-matrix)
#      and re-made when older than $MATRIX_BASE_MAX_AGE_DAYS (default 7) or with --refresh. The base
#      has empty apt lists (as debootstrap leaves them) and, for sid only, Acquire::Check-Valid-Until
#      "false" (this mirror's sid Release file is past its Valid-Until date).
#   2. copy: a fresh copy of the base under $MATRIX_WORK (default /var/tmp/pgnw-matrix), on a fresh
#      loop-mounted file system by default (see --image); a run never starts from a chroot an
#      earlier run changed.
#   3. prep: the machine's local CA certificates (/usr/local/share/ca-certificates) trusted inside
#      (update-ca-certificates), /etc/resolv.conf, dpkg's force-unsafe-io (no fsync per unpacked
#      file: the chroot is thrown away), /proc and a tmpfs on /dev/shm mounted (the host's
#      /dev is never bound), and `git clone` of this repository's HEAD commit at /src (committed
#      work only: uncommitted changes of the work tree are NOT tested), readable by `postgres`.
#   4. [system-packages] only with --system-packages: what .ci/run installs before `make deps`
#      (postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR).
#   5. [node22] sid-node22 only (see above). [pre] only with --pre CMD.
#   6. deps: `make deps`, build: `make -j$MATRIX_JOBS_MAKE`, test: `make test` (installs, runs vitest;
#      its JSON report .tmp/vitest.json gives the test counts), demo: `DEMO_SECONDS=6 make demo`
#      (the README's first command; fails when the worker never counted), [faults]: with --faults,
#      `npm run test:faults`. All as root in /src, with only these variables: CI=true,
#      NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt, PG_MAJOR, PG_CONFIG
#      (/usr/lib/postgresql/$PG_MAJOR/bin/pg_config), LANG=C.UTF-8, PATH, HOME (+ PGNW_NODE_MAJOR=22
#      PGNW_NODE_PREFIX=/opt/libnode127 for sid-node22: hints that today's scripts ignore). The
#      tests run clusters as the `postgres` OS user.
#   A phase that fails ends the ENV (later phases are skipped). Everything goes to a log file
#   ($MATRIX_WORK/logs/<env>-<time>.log); the script prints, per ENV:
#       matrix: <env> <ok|FAILED> tests <passed>/<failed> <seconds>s
#   followed by an indented line with each phase's seconds (cleanup included), and exits 1 if any
#   ENV failed (2 for a usage error).
#   Processes left inside the chroot are killed (by pid, found through /proc/PID/root), its mounts
#   are always unmounted (trap on EXIT/INT/TERM, also after a failure or a timeout), and the chroot
#   is deleted unless --keep.
#
# Options:
#   -j N, --jobs N     run up to N ENVs at once (default 1: sequential; this machine has 2 cores and
#                      each ENV's build and tests use both)
#   --keep             keep each ENV's chroot (unmounted) for debugging; re-enter with --shell DIR
#   --refresh          re-make the bases of the selected ENVs even when not stale
#   --bases            only make the bases of the selected ENVs that are missing or stale, one after
#                      another, then exit (.ci/run starts this beside its first phases on a machine
#                      without them; a run of ENVs waits for a base still being made, by its lock)
#   --system-packages  install PostgreSQL + its server headers before `make deps`, as .ci/run does
#                      (today's `make deps` stops when no PostgreSQL is installed)
#   --faults           also run the fault suite (`npm run test:faults`, ~6 min) in every ENV;
#                      ENV+faults (e.g. sid+faults) runs it in that ENV only. PGNW_SOAK_SECONDS and
#                      PGNW_SOAK_WARMUP_SECONDS, when set, reach the suite (a shorter soak)
#   --bench            instead of the tests and the demo: `make install` and `npm run bench` (the
#                      benchmark, ~4 min); its tables are copied to $MATRIX_WORK/logs/<env>-<time>-bench-*
#                      (latest.md, latest.txt, latest.json, call.json). Run ENVs one at a time
#                      (no -j): the figures are only worth something on an otherwise idle machine
#   --pre CMD          run CMD (bash, in /src, as root) before `make deps`: for trying a workaround
#                      without committing it (a "pre" phase; not what CI should run)
#   --no-cache         no download caches (see MATRIX_CACHE below): a cold run, as a new user's
#   --image, --dir, --tmpfs   where a chroot lives. Default --image (unless --keep): an ext4 file
#                      system in a sparse file (up to $MATRIX_IMAGE_SIZE, default 24G; a run
#                      writes ~2-3 GB) loop-mounted on the chroot's directory and unlinked at once,
#                      so that deleting the chroot is an umount (a plain directory of ~2 GB took
#                      1-3 minutes to delete on a busy disk). --dir: a plain directory (always with
#                      --keep; the fallback without loop devices). --tmpfs (size $MATRIX_TMPFS_SIZE,
#                      default 12g): fastest, but libraries mapped from a tmpfs count as shared
#                      memory, not as file-backed RSS, so test/memory.test.ts's page-dropping case
#                      fails there.
#   -h, --help
# Environment: MATRIX_CACHE, MATRIX_WORK, MATRIX_MIRROR (default http://deb.debian.org/debian),
#   MATRIX_SECURITY_MIRROR (default http://deb.debian.org/debian-security), MATRIX_BASE_MAX_AGE_DAYS,
#   MATRIX_ENV_TIMEOUT (seconds for one ENV's phases after the base, default 1500), MATRIX_JOBS_MAKE
#   (make -j, default nproc), MATRIX_IMAGE_SIZE (default 24G), MATRIX_TMPFS_SIZE (default 12g).
#   Download caches (unless --no-cache): $MATRIX_CACHE/apt-<env> is bind-mounted on
#   /var/cache/apt/archives and $MATRIX_CACHE/npm-<env> on /root/.npm (downloaded .debs and npm
#   tarballs only, verified by apt/npm against their indexes; what gets installed is decided afresh
#   each run). Unmounted with the rest.
#
# Limits:
#   - Root only (debootstrap, chroot, mount), Debian hosts with debootstrap (apt-get install
#     debootstrap), amd64 as tested. A chroot is not a container: it shares the host's kernel,
#     network, PIDs and SysV IPC (PostgreSQL copes with taken SysV keys), and the tests' clusters use
#     unix sockets only. Kernel-dependent results (memory figures, cgroups) are the host's.
#   - Tests the committed HEAD, not the work tree. The base tracks the mirror only when re-made.
#   - sid moves daily: a sid failure may be sid's. Its Valid-Until override is this mirror's problem.
#   - Time: see docs/matrix-notes.md for measured phase times (the whole of CI must stay < 30 min).
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd -P)

MATRIX_CACHE=${MATRIX_CACHE:-/var/cache/pgnw-matrix}
MATRIX_WORK=${MATRIX_WORK:-/var/tmp/pgnw-matrix}
MATRIX_MIRROR=${MATRIX_MIRROR:-http://deb.debian.org/debian}
MATRIX_SECURITY_MIRROR=${MATRIX_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
MATRIX_BASE_MAX_AGE_DAYS=${MATRIX_BASE_MAX_AGE_DAYS:-7}
MATRIX_ENV_TIMEOUT=${MATRIX_ENV_TIMEOUT:-1500}
MATRIX_JOBS_MAKE=${MATRIX_JOBS_MAKE:-$(nproc 2>/dev/null || echo 2)}
MATRIX_TMPFS_SIZE=${MATRIX_TMPFS_SIZE:-12g}
MATRIX_IMAGE_SIZE=${MATRIX_IMAGE_SIZE:-24G}
LOG_DIR=$MATRIX_WORK/logs

ALL_ENVS=(bookworm trixie sid sid-node22)
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# ---------------------------------------------------------------------------------------------
say()  { printf 'matrix: %s\n' "$*"; }
warn() { printf 'matrix: warning: %s\n' "$*" >&2; }
die()  { printf 'matrix: error: %s\n' "$*" >&2; exit 2; }
now()  { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

usage() { sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'; }

# env_config <env>: sets SUITE PG_MAJOR NODE_MAJOR EXTRA_PHASE
env_config() {
  EXTRA_PHASE=""
  case $1 in
    bookworm)   SUITE=bookworm PG_MAJOR=15 NODE_MAJOR=18 ;;
    trixie)     SUITE=trixie   PG_MAJOR=17 NODE_MAJOR=20 ;;
    sid)        SUITE=sid      PG_MAJOR=18 NODE_MAJOR=24 ;;
    sid-node22) SUITE=sid      PG_MAJOR=18 NODE_MAJOR=22 EXTRA_PHASE=node22 ;;
    *) return 1 ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Mounts and processes under a chroot root

# mounts_under <dir>: mount points at or below dir, deepest first
mounts_under() {
  local d; d=$(readlink -f "$1")
  awk -v d="$d" '{ m = $5; gsub(/\\040/, " ", m); if (m == d || index(m, d "/") == 1) print m }' /proc/self/mountinfo |
    awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# procs_under <dir>: pids whose root directory is dir (processes started inside the chroot)
procs_under() {
  local d p r; d=$(readlink -f "$1")
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    if [ "$r" = "$d" ] || [ "${r#"$d"/}" != "$r" ]; then echo "${p#/proc/}"; fi
  done
}

kill_procs_under() {
  local d=$1 pids i
  pids=$(procs_under "$d")
  [ -n "$pids" ] || return 0
  say "killing processes left in $d: $(echo $pids)"
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 1 50); do
    pids=$(procs_under "$d"); [ -n "$pids" ] || return 0
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
}

umount_all_under() {  # returns 1 if something stays mounted
  local d=$1 m try
  for try in 1 2 3; do
    while IFS= read -r m; do
      [ -n "$m" ] || continue
      umount "$m" 2>/dev/null || { [ $try = 3 ] && umount -l "$m" 2>/dev/null; } || true
    done < <(mounts_under "$d")
    [ -z "$(mounts_under "$d")" ] && return 0
    sleep 1
  done
  warn "still mounted under $d: $(mounts_under "$d" | paste -sd' ')"
  return 1
}

# lock_root <root>: one session per chroot (a second --shell on a chroot in use is refused, since
# leaving it kills what runs inside and unmounts)
lock_root() {
  exec {ROOT_LOCK_FD}>"$1/.pgnw-matrix-lock"
  flock -n "$ROOT_LOCK_FD" || die "$1 is in use by another matrix.sh session"
}

# new_root <root>: the directory of a fresh chroot, locked. ROOT_MODE image: an ext4 file system
# in a sparse file, loop-mounted there and unlinked at once (the kernel frees it when the loop
# device is detached at umount: deleting the chroot takes no time, and nothing is left behind even
# after a crash of this script beyond a lazily unmounted loop); tmpfs: a tmpfs; dir: plain directory.
new_root() {
  mkdir -p "$1"
  case $ROOT_MODE in
    image)
      truncate -s "$MATRIX_IMAGE_SIZE" "$1.img"
      mkfs.ext4 -q -F -O ^has_journal -E root_owner=0:0 "$1.img"
      mount -o loop,noatime "$1.img" "$1" || { rm -f "$1.img"; return 1; }
      rm -f "$1.img"
      chmod 0755 "$1" ;;
    tmpfs)
      mount -t tmpfs -o "size=$MATRIX_TMPFS_SIZE,mode=0755" pgnw-matrix-root "$1" ;;
  esac
  lock_root "$1"
}

# release_root <root> <keep>: kill, unmount, delete (unless keep). Safe to call twice.
release_root() {
  local root=$1 keep=$2
  [ -n "$root" ] && [ -d "$root" ] || return 0
  # our lock file is inside: an open fd on it would keep a tmpfs root busy
  if [ -n "${ROOT_LOCK_FD:-}" ]; then exec {ROOT_LOCK_FD}>&-; ROOT_LOCK_FD=""; fi
  kill_procs_under "$root"
  if ! umount_all_under "$root"; then
    warn "not deleting $root: mounts remain"
    return 1
  fi
  if [ "$keep" = 1 ]; then
    say "kept chroot $root (re-enter: $SELF --shell $root)"
  else
    rm -rf --one-file-system "$root"   # an empty mount point, unless ROOT_MODE=dir
  fi
}

# reap_stale_roots: chroots of runs that ended without their cleanup (the script was killed with
# SIGKILL, or the machine's session ended) still have mounts under $MATRIX_WORK/<env>.<time>.<pid>:
# each whose run is gone (its pid is not a live matrix.sh and nobody holds its lock) is released.
# Kept chroots (unmounted) and chroots in use (locked) are left alone.
reap_stale_roots() {
  local d pid
  for d in "$MATRIX_WORK"/*.[0-9]*-[0-9]*.[0-9]*; do
    [ -d "$d" ] && [ -n "$(mounts_under "$d")" ] || continue
    pid=${d##*.}
    if kill -0 "$pid" 2>/dev/null && grep -qa matrix.sh "/proc/$pid/cmdline" 2>/dev/null; then continue; fi
    [ -f "$d/.pgnw-matrix-lock" ] && ! flock -n "$d/.pgnw-matrix-lock" true && continue
    warn "releasing $d, left mounted by a run that ended without its cleanup"
    ( ROOT_LOCK_FD=""; release_root "$d" 0 ) || true
  done
}

# ---------------------------------------------------------------------------------------------
# Bases

base_tar() { echo "$MATRIX_CACHE/base-$1.tar.zst"; }

sources_list() {  # sources_list <suite>
  local s=$1
  echo "deb $MATRIX_MIRROR $s main"
  case $s in
    sid) ;;
    *) echo "deb $MATRIX_MIRROR $s-updates main"
       echo "deb $MATRIX_SECURITY_MIRROR $s-security main" ;;
  esac
}

# ensure_base <suite> <refresh>: makes the cached base tarball when missing, stale or refresh=1.
# Serialised per suite with flock (parallel ENVs of one suite share it).
ensure_base() {
  local suite=$1 refresh=$2 tar build t0 lockfd rc=0
  tar=$(base_tar "$suite")
  mkdir -p "$MATRIX_CACHE" "$MATRIX_WORK"
  exec {lockfd}>"$MATRIX_CACHE/base-$suite.lock"
  flock "$lockfd"
  if [ -f "$tar" ] && [ "$refresh" != 1 ] && [ -n "$(find "$tar" -mtime -"$MATRIX_BASE_MAX_AGE_DAYS" 2>/dev/null)" ]; then
    say "base $suite: cached $(basename "$tar") from $(date -r "$tar" '+%F %T')"
    exec {lockfd}>&-
    BASE_SECONDS=0
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  t0=$(now)
  build=$MATRIX_WORK/base-$suite.build.$$
  say "base $suite: debootstrap --variant=minbase --include=make,ca-certificates $suite $build $MATRIX_MIRROR"
  (
    trap 'set +e; release_root "$build" 0 >/dev/null 2>&1' EXIT
    trap 'exit 143' TERM; trap 'exit 130' INT
    rm -rf --one-file-system "$build"
    debootstrap --variant=minbase --include=make,ca-certificates "$suite" "$build" "$MATRIX_MIRROR" \
      >"$MATRIX_CACHE/base-$suite.debootstrap.log" 2>&1 ||
      { tail -n 30 "$MATRIX_CACHE/base-$suite.debootstrap.log"; echo "debootstrap failed: $MATRIX_CACHE/base-$suite.debootstrap.log"; exit 1; }
    # debootstrap mounts /proc and /sys itself while it works and unmounts them at the end
    umount_all_under "$build"
    sources_list "$suite" >"$build/etc/apt/sources.list"
    if [ "$suite" = sid ]; then
      printf '%s\n' '// pgnw matrix: this mirror serves a sid Release file past its Valid-Until date' \
        'Acquire::Check-Valid-Until "false";' >"$build/etc/apt/apt.conf.d/99pgnw-matrix-valid-until"
    fi
    rm -f "$build"/var/cache/apt/archives/*.deb "$build"/var/cache/apt/*.bin
    rm -rf "$build"/var/lib/apt/lists/*
    mkdir -p "$build/var/lib/apt/lists/partial"
    {
      echo "suite: $suite"
      echo "made: $(date -u '+%F %T') UTC with $(debootstrap --version 2>/dev/null | head -n1) from $MATRIX_MIRROR"
      echo "packages: $(chroot "$build" dpkg-query -W -f='.\n' | wc -l)"
    } >"$build/etc/pgnw-matrix-base"
    tar --numeric-owner --xattrs --acls -C "$build" -cf - . | zstd -T0 -3 -q -o "$tar.tmp.$$"
    mv -f "$tar.tmp.$$" "$tar"
  ) || rc=$?
  rm -f "$tar.tmp.$$"
  exec {lockfd}>&-
  [ $rc = 0 ] || return $rc
  BASE_SECONDS=$(secs_since "$t0")
  say "base $suite: made $(basename "$tar") ($(du -h "$tar" | cut -f1)) in ${BASE_SECONDS}s"
}

# ---------------------------------------------------------------------------------------------
# Preparing a chroot

# mount_root <root> <env> <use_cache>
mount_root() {
  local root=$1 env=$2 use_cache=$3
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mkdir -p "$root/dev/shm"
  mountpoint -q "$root/dev/shm" || mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
  if [ "$use_cache" = 1 ]; then
    mkdir -p "$MATRIX_CACHE/apt-$env/partial" "$MATRIX_CACHE/npm-$env" "$root/var/cache/apt/archives" "$root/root/.npm"
    mountpoint -q "$root/var/cache/apt/archives" || mount --bind "$MATRIX_CACHE/apt-$env" "$root/var/cache/apt/archives"
    mountpoint -q "$root/root/.npm" || mount --bind "$MATRIX_CACHE/npm-$env" "$root/root/.npm"
  fi
}

# prepare_root <root> <env> <use_cache>: copy of the base + certificates + clone + mounts
prepare_root() {
  local root=$1 env=$2 use_cache=$3 sha f
  mkdir -p "$root"
  zstd -dcq "$(base_tar "$SUITE")" | tar --numeric-owner --xattrs --acls -xpf - -C "$root"
  PHASE_SPLIT_COPY=$(secs_since "$T_PHASE")
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  # a throwaway system: dpkg need not sync every file it unpacks (what gets installed is the same;
  # measured: installing make deps' packages in sid took 67-80 s instead of 88-114 s)
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/pgnw-matrix-unsafe-io"
  # the machine's local CAs (egress proxy): trusted inside, as on the host
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  chroot "$root" /usr/bin/env -i PATH=$CHROOT_PATH update-ca-certificates 2>&1 >/dev/null |
    grep -v "does not contain exactly one certificate" || true
  mount_root "$root" "$env" "$use_cache"
  sha=$(git -C "$REPO" rev-parse HEAD)
  git clone -q --no-hardlinks "$REPO" "$root/src"
  git -C "$root/src" -c advice.detachedHead=false checkout -q --detach "$sha"
  chmod -R a+rX "$root/src"
  if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    say "note: $REPO has uncommitted changes; testing commit $(git -C "$REPO" rev-parse --short HEAD) only"
  fi
  echo "clone: /src at $sha ($(git -C "$root/src" log -1 --format='%h %s' | cut -c1-100))"
}

# root_cmd <root> <command string>: sets RCMD to the command line that runs it inside with a new
# user's environment (+ the ENV's variables)
root_cmd() {
  local root=$1; shift
  local extra=()
  [ "${NODE_MAJOR:-}" = 22 ] && extra+=(PGNW_NODE_MAJOR=22 PGNW_NODE_PREFIX=/opt/libnode127)
  # the fault suite's soak length, when the caller shortens it
  [ -n "${PGNW_SOAK_SECONDS:-}" ] && extra+=(PGNW_SOAK_SECONDS="$PGNW_SOAK_SECONDS")
  [ -n "${PGNW_SOAK_WARMUP_SECONDS:-}" ] && extra+=(PGNW_SOAK_WARMUP_SECONDS="$PGNW_SOAK_WARMUP_SECONDS")
  RCMD=(chroot "$root" /usr/bin/env -i PATH=$CHROOT_PATH HOME=/root USER=root LOGNAME=root SHELL=/bin/bash
    TERM=dumb LANG=C.UTF-8 CI=true NODE_EXTRA_CA_CERTS=$CA_BUNDLE DEBIAN_FRONTEND=noninteractive
    PG_MAJOR="$PG_MAJOR" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
    MAKE_JOBS="$MATRIX_JOBS_MAKE" "${extra[@]}" /bin/bash -c "$*")
}
in_root() { root_cmd "$@"; "${RCMD[@]}"; }

# ---------------------------------------------------------------------------------------------
# What runs inside (bash source text for in_root)

SYSTEM_PACKAGES='set -e
pkgs="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR"
apt-get update -q
apt-get install -y -q --no-install-recommends $pkgs
"$PG_CONFIG" --version'

# sid-node22: sid has libnode127 (22.22.2, a binary left over from nodejs 22) but no libnode-dev
# for it, and libnode137 (nodejs 24's) Breaks libnode127, so it cannot be installed next to
# nodejs 24/npm. Like the project's private route: libnode127 is extracted (dpkg -x) into
# /opt/libnode127 and its dependencies installed; the headers come from sid's nodejs 22 source
# package (kept in the archive because libnode127 is; this mirror serves its .orig.tar.xz but not
# its .dsc/.debian.tar.xz, so no Debian patches) through Node's own tools/install.py; config.gypi
# is libnode127's process.config, printed by a node::Start() shim linked against it
# (/opt/libnode127/usr/bin/node, a Node 22 binary).
NODE22_SETUP='set -e
P=/opt/libnode127
compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || apt-get update -q
if ! grep -hqs "^deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/*.list; then
  sed -n "s/^deb /deb-src /p" /etc/apt/sources.list >/etc/apt/sources.list.d/pgnw-deb-src.list
  apt-get update -q
fi
v=$(apt-cache show libnode127 | sed -n "s/^Version: //p" | head -n1)
[ -n "$v" ] || { echo "no libnode127 in this release"; exit 1; }
echo "libnode127 $v"
apt-get install -y -q --no-install-recommends g++ libuv1-dev python3 xz-utils >/dev/null
ma=$(gcc -print-multiarch)
w=/var/tmp/pgnw-node22; rm -rf "$w" "$P"; mkdir -p "$w"; chown _apt "$w" 2>/dev/null || chmod 777 "$w"; cd "$w"
apt-get download -q "libnode127=$v"
deps=$(dpkg-deb -f libnode127_*.deb Depends | tr "," "\n" | sed "s/(.*)//; s/|.*//; s/[[:space:]]//g" | grep -v "^$")
apt-get install -y -q --no-install-recommends $deps >/dev/null
dpkg -x libnode127_*.deb "$P"
ln -sfn libnode.so.127 "$P/usr/lib/$ma/libnode.so"
apt-get source -q --download-only "nodejs=$v" || true   # the .orig.tar.xz is what counts (apt checked its hash)
orig=$(ls nodejs_*.orig.tar.xz 2>/dev/null | grep -v -- "-types-node" | head -n1)
[ -n "$orig" ] || { echo "nodejs $v source (.orig.tar.xz) not available from the mirror"; exit 1; }
tar -xJf "$orig" --wildcards "*/src/*.h" "*/deps/v8/include/*" "*/common.gypi" "*/tools/*"
cd node-v*/
printf "{\"variables\": {\"node_shared_libuv\": \"true\", \"node_use_openssl\": \"true\", \"node_shared_openssl\": \"true\", \"node_shared_zlib\": \"true\"}}\n" >"$w/boot.gypi"
python3 tools/install.py install --headers-only --dest-dir "$P" --prefix /usr --config-gypi-path "$w/boot.gypi" --silent
rm -f "$P/usr/include/node/boot.gypi"
mkdir -p "$P/usr/bin"
printf "#include <node.h>\nint main(int argc, char **argv) { return node::Start(argc, argv); }\n" >"$w/shim.cc"
g++ -std=c++17 -O1 -I"$P/usr/include/node" "$w/shim.cc" -o "$P/usr/bin/node" -L"$P/usr/lib/$ma" -lnode -luv \
  -Wl,-rpath,"$P/usr/lib/$ma" -Wl,--disable-new-dtags
"$P/usr/bin/node" -e "process.stdout.write(\"# libnode127 process.config (scripts/matrix.sh)\\n\" + JSON.stringify(process.config, (k, x) => typeof x === \"boolean\" ? String(x) : x, 2) + \"\\n\")" >"$P/usr/include/node/config.gypi"
rm -rf "$w"
echo "$P: Node $("$P/usr/bin/node" --version) headers in $P/usr/include/node, $P/usr/lib/$ma/libnode.so.127"'

# ---------------------------------------------------------------------------------------------
# One ENV

PHASES=()   # "name seconds status"

# run_phase <name> <root> <command string>: bounded by what is left of MATRIX_ENV_TIMEOUT
run_phase() {
  local name=$1 root=$2 cmd=$3 t0 left rc=0
  left=$(( MATRIX_ENV_TIMEOUT - ($(date +%s) - ENV_T0) ))
  if [ $left -le 10 ]; then
    echo "matrix: no time left for phase $name (MATRIX_ENV_TIMEOUT=$MATRIX_ENV_TIMEOUT)"
    PHASES+=("$name - timeout"); return 124
  fi
  echo
  echo "==================== [$ENV_NAME: $name] $(printf '%s' "$cmd" | head -n1 | cut -c1-100) ===================="
  t0=$(now)
  root_cmd "$root" "$cmd"
  # in the background so that a TERM to this shell runs its trap at once; timeout signals the
  # whole process group of the phase when the ENV's time is up
  timeout -k 20 "$left" "${RCMD[@]}" &
  CHILD=$!
  wait $CHILD || rc=$?
  CHILD=""
  [ $rc = 124 ] && echo "matrix: phase $name killed: over MATRIX_ENV_TIMEOUT=${MATRIX_ENV_TIMEOUT}s"
  PHASES+=("$name $(secs_since "$t0") $([ $rc = 0 ] && echo ok || echo "FAILED($rc)")")
  echo "matrix: phase $name: $([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)") in $(secs_since "$t0")s"
  return $rc
}

# test_counts <root>: "passed failed" from /src/.tmp/vitest.json (and vitest-faults.json, when the
# fault suite ran), "- -" when there is none
test_counts() {
  local root=$1 out="" f jsons=() inside=()
  for f in vitest.json vitest-faults.json; do
    [ -f "$root/src/.tmp/$f" ] && jsons+=("$root/src/.tmp/$f") && inside+=("/src/.tmp/$f")
  done
  [ ${#jsons[@]} -gt 0 ] || { echo "- -"; return 0; }
  if command -v node >/dev/null 2>&1; then
    out=$(node "$root/src/scripts/test-summary.mjs" "${jsons[@]}" 2>/dev/null || true)
  elif [ -x "$root/usr/bin/node" ] && mountpoint -q "$root/proc"; then
    out=$(chroot "$root" /usr/bin/node /src/scripts/test-summary.mjs "${inside[@]}" 2>/dev/null || true)
  fi
  if [[ $out =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
  else
    python3 -c 'import json,sys; rs=[json.load(open(f)) for f in sys.argv[1:]]; print(sum(r["numPassedTests"] for r in rs), sum(r["numFailedTests"] for r in rs))' "${jsons[@]}" 2>/dev/null || echo "- -"
  fi
}

# run_env <env> <resultfile>: everything for one ENV; its output is the ENV's log
run_env() {
  # not local: finish() runs as the EXIT trap, after run_env has returned on success
  env=$1 result=$2 root="" status=FAILED counts="- -"
  ENV_NAME=$env
  env_config "$env"
  ENV_T0=$(date +%s)
  t_all=$(now)
  PHASES=()
  RUN_DIR=$MATRIX_WORK/$env.$(date +%Y%m%d-%H%M%S).$$
  root=$RUN_DIR
  CHILD=""
  finish() {
    local r=$? p
    # a second TERM (the parent passes its own on) must not cut the cleanup short
    trap - EXIT; trap '' INT TERM
    set +e   # cleanup goes on whatever fails (a killed phase's wait status would end it under -e)
    if [ -n "${CHILD:-}" ]; then kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; fi
    [ -d "$root/src" ] && counts=$(test_counts "$root")
    local t_rel; t_rel=$(now)
    release_root "$root" "$KEEP" || true
    PHASES+=("cleanup $(secs_since "$t_rel") $([ "$KEEP" = 1 ] && echo kept || echo ok)")
    [ -n "$(mounts_under "$root" 2>/dev/null)" ] && echo "matrix: MOUNTS LEFT under $root" >&2
    printf '%s %s %s %s\n' "$status" "$counts" "$(secs_since "$t_all")" "${PHASES[*]// /:}" >"$result"
    echo
    echo "matrix: $env $status tests ${counts/ //} $(secs_since "$t_all")s"
    for p in "${PHASES[@]}"; do echo "  $p"; done
    exit $r
  }
  trap finish EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT

  echo "matrix: $env: Debian $SUITE, PostgreSQL $PG_MAJOR, Node $NODE_MAJOR; repo $REPO at $(git -C "$REPO" rev-parse --short HEAD)"
  echo "matrix: host $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r), $(nproc) CPUs; chroot $root"

  BASE_SECONDS=0
  T_PHASE=$(now)
  ensure_base "$SUITE" "$REFRESH"
  PHASES+=("base $BASE_SECONDS $([ "$BASE_SECONDS" = 0 ] && echo cached || echo made)")

  T_PHASE=$(now)
  new_root "$root"
  prepare_root "$root" "$env" "$USE_CACHE"
  PHASES+=("copy $PHASE_SPLIT_COPY ok" "prep $(( $(secs_since "$T_PHASE") - PHASE_SPLIT_COPY )) ok")
  cat "$root/etc/pgnw-matrix-base" | sed 's/^/base: /'

  [ "$SYSTEM_PKGS" = 1 ] && run_phase system-packages "$root" "$SYSTEM_PACKAGES"
  [ "$EXTRA_PHASE" = node22 ] && run_phase node22 "$root" "$NODE22_SETUP"
  [ -n "$PRE_CMD" ] && run_phase pre "$root" "cd /src && $PRE_CMD"
  run_phase deps "$root" 'cd /src && make deps'
  run_phase build "$root" 'cd /src && make -j"$MAKE_JOBS"'
  if [ "$BENCH" = 1 ]; then
    local f rc=0
    run_phase bench "$root" 'cd /src && make install >/dev/null && npm run bench' || rc=$?
    for f in latest.md latest.txt latest.json call.json; do
      cp "$root/src/bench/results/$f" "$LOG_DIR/$env-$stamp-bench-$f" 2>/dev/null || true
    done
    [ $rc = 0 ] || return $rc
    status=ok
    return 0
  fi
  run_phase test "$root" 'cd /src && make test'
  run_phase demo "$root" 'cd /src && DEMO_SECONDS=6 make demo'
  if [ "$FAULTS" = 1 ] || [[ " ${FAULT_ENVS[*]-} " == *" $env "* ]]; then
    run_phase faults "$root" 'cd /src && npm run test:faults'
  fi
  status=ok
}

# ---------------------------------------------------------------------------------------------
# --shell

shell_mode() {
  local target=$1; shift
  local root keep=$KEEP fresh=0 rc=0
  if env_config "$target" 2>/dev/null; then
    ENV_NAME=$target
    ensure_base "$SUITE" "$REFRESH"
    root=$MATRIX_WORK/$target.shell.$(date +%Y%m%d-%H%M%S).$$
    fresh=1
  elif [ -d "$target/etc" ] && [ -d "$target/src" ]; then
    root=$(readlink -f "$target")
    keep=1
    local name; name=$(basename "$root"); name=${name%%.*}
    env_config "$name" 2>/dev/null || { SUITE=unknown PG_MAJOR=""; NODE_MAJOR=""; }
  else
    die "--shell: '$target' is neither an ENV (${ALL_ENVS[*]}) nor a kept chroot directory"
  fi
  mkdir -p "$MATRIX_WORK"
  reap_stale_roots
  # a kept chroot in use by another session is refused before this session may clean anything up
  [ $fresh = 1 ] || lock_root "$root"
  trap 'trap - EXIT; trap "" INT TERM; set +e; release_root "$root" "$keep"' EXIT
  [ $fresh = 0 ] || new_root "$root"
  trap 'exit 143' TERM; trap 'exit 130' INT
  if [ $fresh = 1 ]; then
    T_PHASE=$(now)
    prepare_root "$root" "$target" "$USE_CACHE"
  else
    mount_root "$root" "$name" "$USE_CACHE"
  fi
  if [ $# -gt 0 ]; then
    in_root "$root" "$(printf '%q ' "$@")" || rc=$?
  else
    say "shell in $root (/src is the clone; exit to leave$([ "$keep" = 1 ] && echo '; the chroot is kept' || echo '; the chroot is then deleted'))"
    in_root "$root" 'cd /src; export TERM=xterm PS1="[chroot '"$target"'] \w# "; exec bash --norc -i' || rc=$?
  fi
  exit $rc
}

# ---------------------------------------------------------------------------------------------
# main

KEEP=0 REFRESH=0 SYSTEM_PKGS=0 FAULTS=0 BENCH=0 USE_CACHE=1 JOBS=1 SHELL_TARGET="" ROOT_MODE="" PRE_CMD="" BASES_ONLY=0
envs=()
FAULT_ENVS=()
while [ $# -gt 0 ]; do
  case $1 in
    -j|--jobs) JOBS=${2:?}; shift ;;
    -j*) JOBS=${1#-j} ;;
    --keep) KEEP=1 ;;
    --refresh) REFRESH=1 ;;
    --bases) BASES_ONLY=1 ;;
    --system-packages) SYSTEM_PKGS=1 ;;
    --faults) FAULTS=1 ;;
    --bench) BENCH=1 ;;
    --pre) PRE_CMD=${2:?--pre needs a command}; shift ;;
    --no-cache) USE_CACHE=0 ;;
    --tmpfs) ROOT_MODE=tmpfs ;;
    --image) ROOT_MODE=image ;;
    --dir) ROOT_MODE=dir ;;
    --shell) SHELL_TARGET=${2:?--shell needs an ENV or a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *+faults) env_config "${1%+faults}" || die "unknown ENV '${1%+faults}' (one of: ${ALL_ENVS[*]})"
              envs+=("${1%+faults}"); FAULT_ENVS+=("${1%+faults}") ;;
    *) env_config "$1" || die "unknown ENV '$1' (one of: ${ALL_ENVS[*]})"; envs+=("$1") ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mount)"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive number"
for c in zstd chroot flock timeout git; do command -v $c >/dev/null || die "$c is missing"; done
# where a chroot lives: a kept one in a plain directory; otherwise a loop-mounted image if possible
if [ -z "$ROOT_MODE" ]; then
  ROOT_MODE=dir
  if [ "$KEEP" = 0 ] && command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ]; then ROOT_MODE=image; fi
fi
[ "$ROOT_MODE" != dir ] && [ "$KEEP" = 1 ] && die "--$ROOT_MODE and --keep exclude each other (a kept chroot is a plain directory)"
if [ "$ROOT_MODE" = tmpfs ]; then
  avail_gb=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1048576 }' /proc/meminfo)
  [ "${avail_gb:-0}" -ge $(( 4 * JOBS )) ] || die "--tmpfs: only ${avail_gb} GiB available (a chroot takes 2-3 GiB)"
fi

if [ -n "$SHELL_TARGET" ]; then
  shell_mode "$SHELL_TARGET" "$@"
fi
[ $# = 0 ] || die "unexpected arguments after --: $* (only with --shell)"
[ ${#envs[@]} -gt 0 ] || envs=("${ALL_ENVS[@]}")
mkdir -p "$LOG_DIR" "$MATRIX_WORK" "$MATRIX_CACHE"
if [ "$BASES_ONLY" = 1 ]; then
  declare -A base_done=()
  for env in "${envs[@]}"; do
    env_config "$env"
    [ -z "${base_done[$SUITE]:-}" ] || continue
    base_done[$SUITE]=1
    ensure_base "$SUITE" "$REFRESH"
  done
  exit 0
fi
reap_stale_roots

stamp=$(date +%Y%m%d-%H%M%S)
tmp_results=$(mktemp -d "$MATRIX_WORK/results.XXXXXX")
declare -A pid_of=() log_of=()
running=()

stop_all() {
  local p
  trap - INT TERM
  set +e
  for p in "${running[@]+"${running[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${running[@]+"${running[@]}"}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp_results"
  say "interrupted: chroots cleaned up; logs in $LOG_DIR"
  exit 130
}
trap stop_all INT TERM

start_env() {
  local env=$1 log
  log=$LOG_DIR/$env-$stamp.log
  log_of[$env]=$log
  ln -sfn "$(basename "$log")" "$LOG_DIR/$env.log"
  say "$env: started (log: $log)"
  ( run_env "$env" "$tmp_results/$env" ) >"$log" 2>&1 </dev/null &
  pid_of[$env]=$!
  running+=("$!")
}

t_matrix=$(now)
queue=("${envs[@]}")
while [ ${#queue[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
  while [ ${#queue[@]} -gt 0 ] && [ ${#running[@]} -lt "$JOBS" ]; do
    start_env "${queue[0]}"; queue=("${queue[@]:1}")
  done
  wait -n "${running[@]}" 2>/dev/null || true
  still=()
  for p in "${running[@]}"; do kill -0 "$p" 2>/dev/null && still+=("$p"); done
  running=("${still[@]+"${still[@]}"}")
done

failed=0
echo
for env in "${envs[@]}"; do
  if [ -f "$tmp_results/$env" ]; then
    read -r status passed nfailed seconds phases <"$tmp_results/$env"
  else
    status=FAILED passed=- nfailed=- seconds=? phases=""
  fi
  [ "$status" = ok ] || failed=1
  echo "matrix: $env $status tests $passed/$nfailed ${seconds}s"
  echo "  phases: $(printf '%s\n' $phases | sed 's/^\([^:]*\):\([^:]*\):\(.*\)/\1 \2s \3/' | paste -sd, - | sed 's/,/, /g')  log: ${log_of[$env]}"
done
rm -rf "$tmp_results"
say "total $(secs_since "$t_matrix")s"
exit $failed
