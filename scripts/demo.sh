#!/usr/bin/env bash
# `npm run demo`: installs what is missing, builds, then runs the live replay demo in a
# disposable network-namespace lab (see doc/lab.md). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (network namespaces, raw sockets): run it as root, e.g. sudo npm run demo" >&2
  exit 1
fi
bash scripts/ensure-system.sh
# build when dist is missing or older than any source (tsc takes ~10 s)
stamp=dist/src/lab/demo-main.js
if [ ! -f "$stamp" ] || [ -n "$(find src test tsconfig.json package.json -newer "$stamp" -print -quit)" ]; then
  echo "demo: building (tsc)" >&2
  if ! npm run --silent build >&2; then
    [ -f "$stamp" ] || { echo "demo: the build failed" >&2; exit 1; }
    echo "demo: the build reported errors (see above); running the last build" >&2
  fi
fi
exec node dist/src/lab/demo-main.js "$@"
