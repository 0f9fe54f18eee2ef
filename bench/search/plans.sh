#!/usr/bin/env bash
# The plan-regression harness behind BENCHMARKS.md ("Province scale: plans"): every query shape
# of the search benchmark and the search tests (plans.rs) at _count 10, 100 and 1,000, first
# page and a deep page, on the Synthea sample loaded COPIES times over (default 1 and 10) into
#   - a fresh SQLite store (which keeps no planner statistics: its plans never depend on them),
#   - a fresh PostgreSQL database, statistics refreshed by the load (fresh),
#   - a fresh PostgreSQL database whose statistics were taken while it was empty and never
#     since (stale: the store's own statistics keeper off, no analysis after the load),
#   - with `citus` in PLANS_STORES, a fresh database on the local Citus cluster
#     (bench/citus/database.sh: the tables distributed on the patient key),
# then plans_report.py sets them side by side: PostgreSQL over SQLite for each page, the worst
# cases, every page of 1,000 over 100 ms, and every page whose resources differ from SQLite's.
#
#   bench/search/plans.sh [COPIES...]
#
# Environment: BENCH_DIR (scratch space, default target/bench), BENCH_DATABASE_URL (a PostgreSQL
# server, default postgres://postgres@127.0.0.1:5432), PLANS_STORES (default "sqlite postgres
# postgres-stale"), PLANS_TIMEOUT (PostgreSQL's statement_timeout while measuring, default 10s:
# a page that takes longer is reported as an error). Results: $BENCH_DIR/plans/results.jsonl
# and report.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
copies=("$@")
[ ${#copies[@]} -gt 0 ] || copies=(1 10)
work="${BENCH_DIR:-target/bench}"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
mkdir -p "$work/plans"
results="$work/plans/results.jsonl"
: > "$results"

cargo build --release -p search-bench
bin="${CARGO_TARGET_DIR:-target}/release/search-bench"

synthea="$work/synthea-120/blaze-synthea"
if [ ! -d "$synthea/bundles" ]; then
    mkdir -p "$work/synthea-120"
    tar -xJf ../shared/corpora/synthea-120.tar.xz -C "$work/synthea-120"
fi

for n in "${copies[@]}"; do
    for store in ${PLANS_STORES:-sqlite postgres postgres-stale}; do
        stale=()
        case "$store" in
            sqlite)
                dir="$work/plans-sqlite-${n}x"
                rm -rf "$dir"
                target=(--data "$dir")
                ;;
            postgres|postgres-stale)
                db="meridian_bench_plans_${store/-/_}_${n}x"
                psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
                url="$server/$db"
                target=(--database-url "$url")
                [ "$store" = postgres-stale ] && stale=(--stale-statistics)
                ;;
            citus)
                url="$(bench/citus/database.sh "meridian_bench_plans_citus_${n}x")"
                target=(--database-url "$url")
                ;;
        esac
        echo "== $store, ${n}x"
        "$bin" load "${target[@]}" "${stale[@]}" --copies "$n" "$synthea/bundles" "$synthea/bundles-over-4MiB"
        # A cliff is recorded as a timeout rather than waited out.
        [ "$store" = sqlite ] || psql "$url" -q -c "ALTER DATABASE ${url##*/} SET statement_timeout = '${PLANS_TIMEOUT:-10s}'"
        "$bin" plans "${target[@]}" "${stale[@]}" --label "$store ${n}x" --out "$results"
    done
done
python3 bench/search/plans_report.py "$results" | tee "$work/plans/report.md"
