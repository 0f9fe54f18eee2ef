#!/usr/bin/env bash
# The view runner's throughput (BENCHMARKS.md, "Analytics"): a generated region written as
# NDJSON by `meridian seed --out`, then each view of bench/analytics/views/ run over its
# resource type's file by `meridian view run` (release build), as CSV to a file, three times;
# the best and the median wall time, resources and rows a second. Then, when Node is here,
# the same views over the same files by another SQL on FHIR runner (Medplum's, pinned in
# bench/analytics/peer), three times each as NDJSON, its rows checked to be Meridian's
# (same_rows.py) and its median time set beside Meridian's NDJSON run.
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

command -v node > /dev/null || { echo "no node: the peer runner is not run"; exit 0; }
(cd bench/analytics/peer && npm ci --no-audit --no-fund --silent)
median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(t) for t in sys.argv[1:]):.2f}")' "$@"; }
printf '\n| view | rows | the same rows | meridian median s | medplum median s | medplum / meridian |\n|---|---|---|---|---|---|\n'
for view in bench/analytics/views/*.json; do
    type="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resource"])' "$view")"
    input="$region/$type.ndjson"
    ours=() theirs=()
    for _ in 1 2 3; do
        start="$(date +%s.%N)"
        "$meridian" view run "$view" --resources "$input" --format ndjson --out "$work/meridian.ndjson" 2> /dev/null
        ours+=("$(echo "$(date +%s.%N) - $start" | bc)")
        start="$(date +%s.%N)"
        node bench/analytics/peer/medplum.mjs "$view" "$input" "$work/medplum.ndjson" 2> /dev/null
        theirs+=("$(echo "$(date +%s.%N) - $start" | bc)")
    done
    same="$(python3 bench/analytics/same_rows.py "$work/meridian.ndjson" "$work/medplum.ndjson" | head -1 || true)"
    a="$(median "${ours[@]}")" b="$(median "${theirs[@]}")"
    echo "| $(basename "$view" .json) | $(wc -l < "$work/meridian.ndjson") | $same | $a | $b | $(echo "scale=1; $b / $a" | bc) |"
done
