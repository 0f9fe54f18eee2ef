#!/usr/bin/env bash
# Ingest behind BENCHMARKS.md ("Ingest"): for each data set, `meridian import` into a fresh SQLite
# store and a fresh PostgreSQL database (full parsing, validation, indexing, compression), with
# wall time and peak memory from /usr/bin/time, bytes on disk per resource, and in the same run
# the limit: the same documents inserted raw into the same kind of database (ingest-bench raw).
# For the largest data set the import's progress log gives the rate along the load.
#
#   bench/ingest/run.sh [DATASET...]     DATASET: synthea, or a number of residents (seed 1)
#
# Default: synthea 10000 100000 (about 0.09, 0.14 and 1.38 million resources).
# Environment: BENCH_DIR (scratch space, default target/bench), BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432), BENCH_STORES ("sqlite postgres" by default).
set -euo pipefail
cd "$(dirname "$0")/../.."
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(synthea 10000 100000)
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
mkdir -p "$work"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)"; exit 2; }

cargo build --release -p meridian -p ingest-bench
meridian="${CARGO_TARGET_DIR:-target}/release/meridian"
bench="${CARGO_TARGET_DIR:-target}/release/ingest-bench"

fresh_database() {
    psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
}

for dataset in "${datasets[@]}"; do
    # The input as `meridian import` reads it, and the same resources as NDJSON for the raw insert.
    if [ "$dataset" = synthea ]; then
        synthea="$work/synthea-120/blaze-synthea"
        if [ ! -d "$synthea/bundles" ]; then
            mkdir -p "$work/synthea-120"
            tar -xJf ../shared/corpora/synthea-120.tar.xz -C "$work/synthea-120"
        fi
        input=("$synthea/bundles" "$synthea/bundles-over-4MiB")
        raw_input="$work/synthea-ndjson"
        [ -d "$raw_input" ] || "$bench" ndjson "$raw_input" "${input[@]}"
    else
        raw_input="$work/region-$dataset"
        [ -d "$raw_input" ] || "$meridian" seed --patients "$dataset" --out "$raw_input"
        input=("$raw_input")
    fi
    input_mb=$(du -sm "${input[@]}" | awk '{s += $1} END {print s}')
    for store in ${BENCH_STORES:-sqlite postgres}; do
        log="$work/ingest-$dataset-$store.log"
        case "$store" in
            sqlite)
                dir="$work/ingest-sqlite-$dataset"
                rm -rf "$dir" "$work/raw-sqlite"
                target=(--data "$dir")
                raw_target=(--data "$work/raw-sqlite")
                ;;
            postgres)
                db="meridian_bench_ingest_$dataset"
                fresh_database "$db"
                fresh_database meridian_bench_raw
                target=(--database-url "$server/$db")
                raw_target=(--database-url "$server/meridian_bench_raw")
                ;;
        esac
        echo "== $dataset ($input_mb MB of input) into $store"
        /usr/bin/time -v "$meridian" import "${target[@]}" "${input[@]}" 2> "$log" || true
        grep -E "^imported" "$log"
        { grep -E "^  [^ ]" "$log" || true; } | head -5   # the first failures, if any
        grep -E "Maximum resident set size" "$log" | awk '{printf "peak memory: %.0f MiB\n", $6 / 1024}'
        case "$store" in
            sqlite) bytes=$(du -sb "$dir" | cut -f1) ;;
            postgres) bytes=$(psql "$server/postgres" -At -c "SELECT pg_database_size('$db')") ;;
        esac
        resources=$(grep -E "^imported" "$log" | awk '{print $2}')
        echo "on disk: $((bytes / 1000000)) MB, $((bytes / resources)) bytes a resource"
        "$bench" raw "${raw_target[@]}" "$raw_input"
        "$bench" windows "$log" > "$work/ingest-$dataset-$store.windows.md"
        echo "rate along the load: $work/ingest-$dataset-$store.windows.md"
    done
done
