#!/usr/bin/env bash
# scripts/install-sdk.sh — the `make install` part for worker authors: the SDK as an npm tarball,
# the CLI, and a `pg-node-worker` command on PATH.
#
#   install-sdk.sh PG_CONFIG PKGLIB_INST SHARE_INST BINDIRS...
#
# PKGLIB_INST, SHARE_INST and each of BINDIRS are the final directories with DESTDIR already
# prefixed; PKGLIB_REAL (environment) is PKGLIB_INST without DESTDIR, what the launcher runs.
#   SHARE_INST/pg-node-worker-<version>.tgz   `npm pack` of this checkout (dist/ must be built);
#                                             projects depend on it (npm install -D <it>)
#   PKGLIB_INST/cli/                          that package unpacked, with its production
#                                             dependencies copied from ./node_modules (offline:
#                                             no registry is asked; esbuild's binary is per arch)
#   BINDIR/pg-node-worker                     a launcher: the system's node (18 or later) running
#                                             PKGLIB_INST/cli, PG_CONFIG defaulting to this server's
# Earlier SDK tarballs stay: projects made with them still install.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 PG_CONFIG PKGLIB_INST SHARE_INST [BINDIR...]" >&2; exit 2; }
pg_config=$1 pkglib_inst=$2 share_inst=$3
shift 3
pkglib_real=${PKGLIB_REAL:-$pkglib_inst}
# the launcher names the server's own pg_config (Debian's /usr/bin/pg_config picks the newest server)
b=$("$pg_config" --bindir)
[ ! -x "$b/pg_config" ] || pg_config=$b/pg_config
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$top"

[ -f dist/index.js ] && [ -f dist/cli/main.js ] && [ -f dist/testing/index.js ] ||
  { echo "install-sdk: dist/ is not built: run make" >&2; exit 1; }
version=$(node -p 'require("./package.json").version')
tgz=pg-node-worker-$version.tgz

work=$(mktemp -d "${TMPDIR:-/tmp}/pgnw-sdk.XXXXXX")
trap 'rm -rf "$work"' EXIT
# make built dist/ already: no prepack build again
npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null
[ -f "$work/$tgz" ] || { echo "install-sdk: npm pack made no $tgz" >&2; exit 1; }

echo "install -m 0644 $tgz '$share_inst/$tgz'"
install -d -m 0755 "$share_inst"
install -m 0644 "$work/$tgz" "$share_inst/$tgz"

# the CLI: the package as published, plus the production dependencies this checkout installed
cli=$work/cli
mkdir -p "$cli"
tar -xzf "$work/$tgz" -C "$cli" --strip-components=1 --no-same-owner
while IFS= read -r dep; do
  case $dep in "$top"/node_modules/*) ;; *) continue ;; esac
  rel=${dep#"$top"/}
  # a package in a nested node_modules comes along with the top-level package holding it
  case ${rel#node_modules/} in */node_modules/*) continue ;; esac
  mkdir -p "$cli/$(dirname "$rel")"
  cp -R "$dep" "$cli/$rel"
done < <(npm ls --omit=dev --all --parseable)
chmod -R u+rwX,go+rX,go-w "$cli"
# what was copied runs: the CLI, esbuild's binary for this machine, the testing module's client
(cd "$cli" && node bin/pg-node-worker.js --version >/dev/null &&
  node -e 'require("esbuild").transformSync("let a: number = 1", { loader: "ts" }); require("pg"); require("semver")') ||
  { echo "install-sdk: the CLI in $cli does not run with the dependencies copied from node_modules (npm ci?)" >&2; exit 1; }
echo "installing the CLI into $pkglib_inst/cli"
install -d -m 0755 "$pkglib_inst"
rm -rf "$pkglib_inst/cli.old"
[ ! -e "$pkglib_inst/cli" ] || mv "$pkglib_inst/cli" "$pkglib_inst/cli.old"
cp -R "$cli" "$pkglib_inst/cli"
rm -rf "$pkglib_inst/cli.old"

launcher=$work/pg-node-worker
cat >"$launcher" <<LAUNCHER
#!/bin/sh
# pg-node-worker: the CLI of pg_node_worker $version, installed by make install for the server
# of $pg_config (another server: PG_CONFIG=/path/to/pg_config pg-node-worker ...).
: "\${PG_CONFIG:=$pg_config}"
export PG_CONFIG
node=\${PGNW_NODE:-node}
command -v "\$node" >/dev/null 2>&1 || {
  echo "pg-node-worker: needs Node.js 18 or later as \\\`node\\\` on PATH (or PGNW_NODE=/path/to/node)" >&2
  exit 127
}
exec "\$node" '$pkglib_real/cli/bin/pg-node-worker.js' "\$@"
LAUNCHER
for bindir in "$@"; do
  [ -n "$bindir" ] || continue
  echo "install -m 0755 pg-node-worker '$bindir/pg-node-worker'"
  install -d -m 0755 "$bindir"
  install -m 0755 "$launcher" "$bindir/pg-node-worker"
done
