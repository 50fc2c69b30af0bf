#!/usr/bin/env bash
# `npm run soak -- --minutes N`: the soak test (src/lab/soak.ts; not in CI). Builds when the
# compiled soak is missing or older than a source file, then runs it under the e2e lock
# (/tmp/tcpcopy-e2e.lock: it builds network namespaces). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dist/src/lab/soak-main.js ] || [ -n "$(find src test -name '*.ts' -newer dist/src/lab/soak-main.js -print -quit)" ]; then
  npx tsc -p tsconfig.json
fi
exec flock /tmp/tcpcopy-e2e.lock node dist/src/lab/soak-main.js "$@"
