#!/usr/bin/env bash
# scripts/demo.sh — what `make demo` runs.
#
# Installs what is missing (as root), builds and installs pg_node_worker, starts a throwaway
# cluster under ./.demo running examples/counted.ts (worker_spi in TypeScript), and shows the
# counter working live: it inserts 'delta' rows and prints the total and the worker's log lines.
# Stops and removes the cluster on exit or Ctrl-C.
#
# Environment: PG_CONFIG (default pg_config), DEMO_SECONDS (default 30; 0 = until Ctrl-C).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd -P)
PG_CONFIG=${PG_CONFIG:-pg_config}
DEMO_SECONDS=${DEMO_SECONDS:-30}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# ---- build and install -------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
  say "make deps (installs only what is missing)"
  make -s deps PG_CONFIG="$PG_CONFIG"
  say "make && make install"
  make -s PG_CONFIG="$PG_CONFIG" >/dev/null
  make -s install PG_CONFIG="$PG_CONFIG" >/dev/null
else
  make -s check-deps PG_CONFIG="$PG_CONFIG"
  make -s PG_CONFIG="$PG_CONFIG" >/dev/null
  if [ ! -f "$("$PG_CONFIG" --pkglibdir)/pg_node_worker_runtime.so" ]; then
    echo "pg_node_worker is not installed into $("$PG_CONFIG" --pkglibdir): run 'sudo make install' (or 'make demo' as root)" >&2
    exit 1
  fi
fi

BINDIR=$("$PG_CONFIG" --bindir)

# ---- the cluster ---------------------------------------------------------------------------
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` OS user.
RUNAS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  RUNAS=(runuser -u postgres --)
fi

rm -rf "$REPO/.demo"
mkdir -p "$REPO/.demo"
DIR="$REPO/.demo"
if [ ${#RUNAS[@]} -gt 0 ]; then
  chown postgres: "$DIR"
  # the server user must reach the directory; a checkout under /root is not reachable
  if ! "${RUNAS[@]}" test -w "$DIR" 2>/dev/null; then
    rmdir "$DIR"
    DIR=$(mktemp -d /tmp/pgnw-demo.XXXXXX)
    chown postgres: "$DIR"
    ln -s "$DIR" "$REPO/.demo"
  fi
fi
chmod 0755 "$DIR"
PGDATA="$DIR/data"
PORT=$(( 40000 + RANDOM % 20000 ))
PSQL=("$BINDIR/psql" -X -q -A -t -h "$DIR" -p "$PORT" -U postgres -d postgres)

cleanup() {
  trap - EXIT INT TERM
  echo
  say "stopping the demo cluster and removing ./.demo"
  "${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR" "$REPO/.demo"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "initdb into $DIR"
"${RUNAS[@]}" "$BINDIR/initdb" -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$DIR'
port = $PORT
counted.naptime = 2
EOF

say "npx pg-node-worker deploy examples/counted.ts -D $PGDATA"
node "$REPO/bin/pg-node-worker.js" deploy "$REPO/examples/counted.ts" -D "$PGDATA"

say "pg_ctl start"
"${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -l "$DIR/server.log" -w start >/dev/null

for _ in $(seq 1 100); do
  grep -q 'counted: initialized' "$DIR/server.log" && break
  sleep 0.1
done
echo
"${PSQL[@]}" -c "SELECT format('worker %s (pid %s) is %s', application_name, pid, backend_type) FROM pg_stat_activity WHERE backend_type = 'node_worker'"
grep -E 'counted: ' "$DIR/server.log" | sed 's/^/  log: /'
echo
say "inserting deltas; the worker folds them into the total every 2 s (Ctrl-C to stop)"

seen=$(wc -l <"$DIR/server.log")
start=$(date +%s)
while [ "$DEMO_SECONDS" = 0 ] || [ $(( $(date +%s) - start )) -lt "$DEMO_SECONDS" ]; do
  delta=$(( RANDOM % 10 + 1 ))
  "${PSQL[@]}" -c "INSERT INTO counted.counted VALUES ('delta', $delta)"
  total=$("${PSQL[@]}" -c "SELECT value FROM counted.counted WHERE type = 'total'")
  pending=$("${PSQL[@]}" -c "SELECT coalesce(sum(value), 0) FROM counted.counted WHERE type = 'delta'")
  printf '  inserted delta %2d   total = %-5s pending deltas = %s\n' "$delta" "$total" "$pending"
  now=$(wc -l <"$DIR/server.log")
  if [ "$now" -gt "$seen" ]; then
    sed -n "$((seen + 1)),${now}p" "$DIR/server.log" | grep -E 'counted: ' | sed 's/^/  log: /' || true
    seen=$now
  fi
  sleep 1
done
# a demo that showed nothing working says so in its exit status (CI runs it)
if [ -z "${total:-}" ]; then
  echo "demo: the worker never wrote a total: see $DIR/server.log" >&2
  exit 1
fi
