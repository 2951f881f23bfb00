#!/usr/bin/env bash
# scripts/snapshot.sh INSTDIR NODE_VERSION BUILTIN HEAP_MB... — the start-up snapshots for `make install`.
#
# From Node 20 on, a worker starts from a snapshot of Node's bootstrapped state when it has one,
# instead of compiling Node's own JavaScript at every start (docs/DESIGN.md, "Start-up"). A libnode
# built with Node's built-in snapshot (BUILTIN=1: Debian's Node 24) needs nothing here. For one
# built without (Debian's Node 20 and 22), this makes INSTDIR/snapshot.blob with `node
# --build-snapshot`, if the machine's `node` is the same build as the libnode the runtime links
# (same version, same libnode.so): a snapshot only loads into the Node build that made it. Else
# workers start without one, as on Node 18 (which has no snapshot API). Never fails the install.
#
# V8 also refuses a snapshot made under other V8 flags, and a worker's heap limit is one
# (--max-old-space-size): one blob per heap limit, INSTDIR/snapshot-<MB>.blob, for each HEAP_MB
# given (the Makefile's SNAPSHOT_HEAP_MB: node_worker.heap_limit_mb's default, 256). A worker with
# another limit starts without a snapshot.
set -uo pipefail
instdir=$1 version=$2 builtin=$3
shift 3
heaps=("$@")
rm -f "$instdir"/snapshot.blob "$instdir"/snapshot-*.blob
[ "${version%%.*}" -ge 20 ] || exit 0
if [ "$builtin" = 1 ]; then
  echo "snapshot: libnode $version has Node's built-in start-up snapshot"
  exit 0
fi
# the node of the same build: the prefix route's own (PGNW_NODE_PREFIX's bin/), else the one on PATH
node=""
for n in "${NODE_PREFIX:+$NODE_PREFIX/usr/bin/node}" "${NODE_PREFIX:+$NODE_PREFIX/bin/node}"; do
  [ -n "$n" ] && [ -x "$n" ] && { node=$n; break; }
done
[ -n "$node" ] || node=$(command -v node || true)
if [ -z "$node" ] || [ "$("$node" -p process.versions.node 2>/dev/null)" != "$version" ] ||
   ! ldd "$node" 2>/dev/null | grep -q 'libnode\.so'; then
  echo "snapshot: no start-up snapshot (libnode $version has none built in, and no node of that build is on PATH to make one)"
  exit 0
fi
entry=$(mktemp --suffix=.js)
tmp=$(mktemp)
for mb in "${heaps[@]}"; do
  case $mb in ''|*[!0-9]*) echo "snapshot: '$mb' is not a heap limit in MB; skipped"; continue ;; esac
  blob=$instdir/snapshot-$mb.blob
  if "$node" --max-old-space-size="$mb" --snapshot-blob "$tmp" --build-snapshot "$entry" >/dev/null 2>&1; then
    install -m 0644 "$tmp" "$blob" && echo "snapshot: made $blob with $node ($version, heap limit $mb MB)"
  else
    echo "snapshot: $node --build-snapshot failed; workers with a heap limit of $mb MB start without a snapshot"
  fi
done
rm -f "$entry" "$tmp"
exit 0
