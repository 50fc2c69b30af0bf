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
echo "demo: building (tsc)" >&2
if ! npm run --silent build >&2; then
  [ -f dist/src/lab/demo-main.js ] || { echo "demo: the build failed" >&2; exit 1; }
  echo "demo: the build reported errors (see above); running the last build" >&2
fi
exec node dist/src/lab/demo-main.js "$@"
