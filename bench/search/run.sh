#!/usr/bin/env bash
# Search latency behind BENCHMARKS.md ("Search"): the Synthea sample loaded COPIES times over
# (default 1 and 10; add 100 for the full scaling run, about 9.2 million resources), into a fresh
# SQLite store and a fresh PostgreSQL database each, then p50/p99 of the first page of typical
# searches, chains, _has and $everything of the largest sampled patient.
#
#   bench/search/run.sh [COPIES...]
#
# Environment: BENCH_DIR (scratch space, default target/bench; 100x needs about 26 GB there for
# SQLite and 41 GB in PostgreSQL's data directory),
# BENCH_DATABASE_URL (a PostgreSQL server, default postgres://postgres@127.0.0.1:5432),
# BENCH_STORES ("sqlite postgres" by default), BENCH_ITERATIONS (default 200).
set -euo pipefail
cd "$(dirname "$0")/../.."
copies=("$@")
[ ${#copies[@]} -gt 0 ] || copies=(1 10)
work="${BENCH_DIR:-target/bench}"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
iterations="${BENCH_ITERATIONS:-200}"
mkdir -p "$work"

cargo build --release -p search-bench
bin="${CARGO_TARGET_DIR:-target}/release/search-bench"

synthea="$work/synthea-120/blaze-synthea"
if [ ! -d "$synthea/bundles" ]; then
    mkdir -p "$work/synthea-120"
    tar -xJf ../shared/corpora/synthea-120.tar.xz -C "$work/synthea-120"
fi

for n in "${copies[@]}"; do
    for store in ${BENCH_STORES:-sqlite postgres}; do
        case "$store" in
            sqlite)
                dir="$work/search-sqlite-${n}x"
                rm -rf "$dir"
                target=(--data "$dir")
                ;;
            postgres)
                db="meridian_bench_search_${n}x"
                psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
                target=(--database-url "$server/$db")
                ;;
        esac
        echo "== $store, ${n}x"
        "$bin" load "${target[@]}" --copies "$n" "$synthea/bundles" "$synthea/bundles-over-4MiB"
        case "$store" in
            sqlite) du -sh "$dir" ;;
            postgres) psql "$server/postgres" -At -c "SELECT pg_size_pretty(pg_database_size('$db'))" ;;
        esac
        "$bin" run "${target[@]}" --iterations "$iterations" --label "$store ${n}x"
    done
done
