#!/usr/bin/env bash
# The view runner's throughput (BENCHMARKS.md, "Analytics"): a generated region written as
# NDJSON by `meridian seed --out`, then each view of bench/analytics/views/ run over its
# resource type's file by `meridian view run` (release build), as CSV to a file, three times;
# the best and the median wall time, resources and rows a second.
#
#   bench/analytics/run.sh [RESIDENTS]      (default 100000: about 1.38 million resources)
#
# Environment: BENCH_DIR (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")/analytics"
residents="${1:-100000}"
cargo build --release -p meridian
meridian="${CARGO_TARGET_DIR:-target}/release/meridian"
region="$work/region-$residents"
if [ ! -f "$region/Patient.ndjson" ]; then
    rm -rf "$region"
    "$meridian" seed --patients "$residents" --seed 7 --out "$region" > /dev/null
fi
printf '| view | resources | rows | best s | median s | resources/s | rows/s |\n|---|---|---|---|---|---|---|\n'
for view in bench/analytics/views/*.json; do
    type="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resource"])' "$view")"
    input="$region/$type.ndjson"
    resources="$(wc -l < "$input")"
    times=()
    for _ in 1 2 3; do
        start="$(date +%s.%N)"
        "$meridian" view run "$view" --resources "$input" --format csv --out "$work/out.csv" 2> /dev/null
        times+=("$(echo "$(date +%s.%N) - $start" | bc)")
    done
    rows=$(( $(wc -l < "$work/out.csv") - 1 ))
    python3 - "$(basename "$view" .json)" "$resources" "$rows" "${times[@]}" <<'PY'
import statistics, sys
name, resources, rows, *times = sys.argv[1:]
resources, rows, times = int(resources), int(rows), sorted(float(t) for t in times)
best, median = times[0], statistics.median(times)
print(f"| {name} | {resources:,} | {rows:,} | {best:.2f} | {median:.2f} | {resources / median:,.0f} | {rows / median:,.0f} |")
PY
done
