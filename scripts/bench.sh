#!/usr/bin/env bash
# `npm run bench`: builds when the compiled benchmark is missing or older than a source file,
# then runs every benchmark (bench/run.ts; the lab part only as root or with --lab).
# Extra arguments go to bench/run.js: --lab, --no-lab, --only engine,offline,memory,platform,lab,max,latency,latency-ab,ab.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dist/bench/run.js ] || [ -n "$(find src bench test -name '*.ts' -newer dist/bench/run.js -print -quit)" ]; then
  npx tsc -p tsconfig.json || echo "bench: tsc reported errors (see above); running what was emitted" >&2
fi
exec node --expose-gc dist/bench/run.js "$@"
