#!/usr/bin/env bash
# The indicator catalogue at region scale (issue 20's speed targets), release build:
#   1. a region of N residents loaded by `meridian seed` into the embedded store;
#   2. every catalogue view materialised from scratch (`meridian view materialise`);
#   3. 1,000 new resources imported (100 residents, each with 9 visits), then the views
#      refreshed from the change log;
#   4. every indicator computed for every month of a year and for the whole year
#      (`meridian measure evaluate`: the refresh it starts with finds nothing to do);
#   5. the server up, every indicator over HTTP (`$evaluate-measure`) REPEAT times for one
#      month, the latency of each request measured by the client (p50, p99).
# Usage: bench/analytics/indicators.sh [RESIDENTS] [WORK_DIR] [REPEAT]
set -euo pipefail
residents=${1:-100000}
work=${2:-target/bench-indicators}
repeat=${3:-20}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cargo build --release -p meridian --manifest-path "$root/Cargo.toml" >&2
meridian=${CARGO_TARGET_DIR:-$root/target}/release/meridian
mkdir -p "$work"
cd "$work"
seconds() { python3 -c 'import time; print(time.time())'; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

if [ ! -e store/.seeded ]; then
  rm -rf store
  start=$(seconds)
  "$meridian" seed --patients "$residents" --seed 1 --data store >&2
  echo "load: $(elapsed "$start" "$(seconds)") s" 
  touch store/.seeded
fi

rm -rf store/views
start=$(seconds)
"$meridian" view materialise --data store 2> materialise.log
echo "materialise every view: $(elapsed "$start" "$(seconds)") s"
grep -E "built" materialise.log | sed 's/^/  /'

python3 "$here/new_resources.py" 100 > new.ndjson
"$meridian" import --data store new.ndjson >&2
start=$(seconds)
"$meridian" view materialise --data store 2> refresh.log
echo "refresh after $(wc -l < new.ndjson) new resources: $(elapsed "$start" "$(seconds)") s"
grep -E "refreshed" refresh.log | sed 's/^/  /'

indicators=$("$meridian" measure list | cut -f1)
start=$(seconds)
for indicator in $indicators; do
  for month in 2025-07 2025-08 2025-09 2025-10 2025-11 2025-12 2026-01 2026-02 2026-03 2026-04 2026-05 2026-06; do
    "$meridian" measure evaluate "$indicator" --period-start "$month" --period-end "$month" --data store > /dev/null
  done
  "$meridian" measure evaluate "$indicator" --period-start 2025-07 --period-end 2026-06 --data store > /dev/null
done
echo "every indicator for 12 months and the year (13 processes each): $(elapsed "$start" "$(seconds)") s"

"$meridian" serve --data store --listen 127.0.0.1:18443 > serve.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18443/health/ready > /dev/null && break; sleep 0.2; done
token=$("$meridian" token --data store)
python3 "$here/indicator_latency.py" http://127.0.0.1:18443/fhir "$token" "$repeat" $indicators
