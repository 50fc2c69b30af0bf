#!/usr/bin/env bash
# `npm run soak -- --minutes N`: the soak test (src/lab/soak.ts; not in CI). Builds when the
# compiled soak is missing or older than a source file, then runs it. Needs root. Its lab has
# names of its own (prefix tsk1, or --prefix P), which no e2e test, bench part or demo uses, so
# it does not take the e2e lock (/tmp/tcpcopy-e2e.lock) and can run for an hour beside them;
# SOAK_LOCK=1 takes the lock anyway (a quiet machine for its figures).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dist/src/lab/soak-main.js ] || [ -n "$(find src test -name '*.ts' -newer dist/src/lab/soak-main.js -print -quit)" ]; then
  npx tsc -p tsconfig.json
fi
if [ "${SOAK_LOCK:-0}" = 1 ]; then
  exec flock /tmp/tcpcopy-e2e.lock node dist/src/lab/soak-main.js "$@"
fi
exec node dist/src/lab/soak-main.js "$@"
