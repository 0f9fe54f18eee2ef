#!/usr/bin/env bash
# The cost of the access rules on search (BENCHMARKS.md, "Access"): the Synthea sample COPIES
# times over (default 10), loaded as held by one institution (Organization/bench-a), then 10,000
# patient-privacy Consents (each patient's first permitting Organization/bench-b), then the
# search set measured in one run three ways: as the operator (no rule applies), as A's client
# (what it holds: the custodian check) and as B's client (what consents let it see: the consent
# look-up beside every row). Both stores.
#
#   bench/search/access.sh [COPIES]
#
# Environment: as run.sh (BENCH_DIR, BENCH_DATABASE_URL, BENCH_STORES, BENCH_ITERATIONS),
# BENCH_CONSENTS (default 10000).
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-10}"
work="${BENCH_DIR:-target/bench}"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
iterations="${BENCH_ITERATIONS:-200}"
consents="${BENCH_CONSENTS:-10000}"
mkdir -p "$work"

cargo build --release -p search-bench
bin="${CARGO_TARGET_DIR:-target}/release/search-bench"

synthea="$work/synthea-120/blaze-synthea"
if [ ! -d "$synthea/bundles" ]; then
    mkdir -p "$work/synthea-120"
    tar -xJf ../shared/corpora/synthea-120.tar.xz -C "$work/synthea-120"
fi

for store in ${BENCH_STORES:-sqlite postgres}; do
    case "$store" in
        sqlite)
            dir="$work/access-sqlite-${n}x"
            rm -rf "$dir"
            target=(--data "$dir")
            ;;
        postgres)
            db="meridian_bench_access_${n}x"
            psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
            target=(--database-url "$server/$db")
            ;;
    esac
    echo "== $store, ${n}x, $consents consents"
    "$bin" load "${target[@]}" --copies "$n" --organization Organization/bench-a \
        "$synthea/bundles" "$synthea/bundles-over-4MiB"
    "$bin" consents "${target[@]}" --count "$consents" --organization Organization/bench-b
    "$bin" run "${target[@]}" --iterations "$iterations" --label "$store ${n}x operator"
    "$bin" run "${target[@]}" --iterations "$iterations" --label "$store ${n}x as A (custodian)" \
        --as Organization/bench-a
    "$bin" run "${target[@]}" --iterations "$iterations" --label "$store ${n}x as B (consents)" \
        --as Organization/bench-b
done
