#!/usr/bin/env bash
# The decision-support benchmark behind BENCHMARKS.md ("Decision support at ordering"): a
# running `meridian serve` (sign-in on) on the 10,000-resident region, one more patient with
# 5,000 resources written by a county hospital, and `cds-bench` posting order-sign with five
# draft orders as a city hospital's system would, each request with its own ES384 JWT.
#
#   bench/cds/run.sh [--data DIR | --database-url URL]
#
# Without a store, the 10,000-resident region (seed 1) is generated into
# target/bench/load-sqlite first (shared with bench/load). Environment: BENCH_DIR (default
# target/bench), BENCH_SECONDS (per step, default 20), BENCH_RESOURCES (default 5000),
# BENCH_STEPS ("clients:rate" pairs, default "1:10 4:40 4:0": one doctor at 10 req/s, four at
# 40 req/s in all, four as fast as answered).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
seconds="${BENCH_SECONDS:-20}"
listen=127.0.0.1:18081
mkdir -p "$work"

cargo build --release -p meridian -p cds-bench
target="${CARGO_TARGET_DIR:-target}/release"

store=("$@")
if [ ${#store[@]} -eq 0 ]; then
    store=(--data "$work/load-sqlite")
    if [ ! -d "$work/load-sqlite" ]; then
        "$target/meridian" seed --patients 10000 --data "$work/load-sqlite"
    fi
fi

"$target/meridian" serve "${store[@]}" --listen "$listen" --log warn &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://$listen/health/ready" > /dev/null && break
    sleep 0.2
done
token="$("$target/meridian" token "${store[@]}" | tail -1)"

first=1
for step in ${BENCH_STEPS:-1:10 4:40 4:0}; do
    clients="${step%%:*}"
    rate="${step##*:}"
    # The patient is written once per step: each step's patient is a fresh one of the same size.
    "$target/cds-bench" --origin "http://$listen" --admin-token "$token" \
        --resources "${BENCH_RESOURCES:-5000}" --clients "$clients" --rate "$rate" --seconds "$seconds" \
        2> >(if [ $first = 1 ]; then cat >&2; else cat > /dev/null; fi)
    first=0
done
