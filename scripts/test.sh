#!/usr/bin/env bash
# The README's test command: installs what it needs, builds, runs the unit tests, then the
# end-to-end lab tests (these need root: network namespaces, raw sockets).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system.sh
npm run build
node --test --test-reporter=spec dist/test/unit/
if [ "$(id -u)" = 0 ]; then
  node --test --test-concurrency=1 --test-timeout=900000 --test-reporter=spec dist/test/e2e/
else
  echo "end-to-end tests skipped: they need root (network namespaces, raw sockets)"
fi
