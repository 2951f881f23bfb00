#!/usr/bin/env bash
# scripts/node-builtins.sh MAJOR — the files Debian's libnode of Node MAJOR reads from
# /usr/share/nodejs at start-up, one per line. Debian builds libnode against these packaged
# copies instead of bundling them, and it aborts (exit 134) when one is missing; Debian's nodejs
# package depends on their packages, a private or prefix libnode does not bring them.
# Measured by starting each libnode without them (docs/matrix-notes.md, "builtin files").
set -euo pipefail
case "${1:-}" in
  18|22) dirs="acorn/dist/acorn.js acorn-walk/dist/walk.js undici/undici-fetch.js cjs-module-lexer/lexer.js cjs-module-lexer/dist/lexer.js" ;;
  20) dirs="acorn/dist/acorn.js acorn-walk/dist/walk.js undici/undici-fetch.js cjs-module-lexer/lexer.js cjs-module-lexer/dist/lexer.js minimatch/dist/cjs/index.bundle.js" ;;
  24) dirs="acorn/dist/acorn.js acorn-walk/dist/walk.js undici/undici-fetch.js" ;;
  *) echo "node-builtins.sh: unknown Node major '${1:-}'" >&2; exit 2 ;;
esac
for f in $dirs; do echo "/usr/share/nodejs/$f"; done
