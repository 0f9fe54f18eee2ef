#!/usr/bin/env bash
# The verifiable log behind BENCHMARKS.md ("The verifiable log"):
#  1. ledger-bench append: leaves/s into a fresh store of each kind, in transactions of 1,000
#     and of 10 leaves;
#  2. ledger-bench tiles + prove: inclusion-proof latency from the store's tiles at 1M and 100M
#     leaves (3.2 GB a store at 100M);
#  3. `meridian import` of the Synthea sample and of a 10k-resident region into each store, with
#     this build and with a baseline build from before the log (BASELINE: a `meridian` binary,
#     e.g. built from commit 12670ff), one after the other in the same run.
#
#   BASELINE=/path/to/old/meridian bench/ledger/run.sh [LEAVES_FOR_PROOFS]
#
# Environment: BENCH_DIR (scratch, default target/bench), BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
big="${1:-100000000}"
mkdir -p "$work"
cargo build --release -p meridian -p ledger-bench
meridian="${CARGO_TARGET_DIR:-target}/release/meridian"
bench="${CARGO_TARGET_DIR:-target}/release/ledger-bench"
export RUST_BACKTRACE=0

fresh_database() {
    psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $1" 2>/dev/null
    psql "$server/postgres" -q -c "CREATE DATABASE $1"
}

echo "== appends"
for batch in 1000 10; do
    leaves=$([ "$batch" = 1000 ] && echo 1000000 || echo 100000)
    rm -rf "$work/ledger-append-$batch"
    "$bench" append "sqlite:$work/ledger-append-$batch" "$leaves" "$batch"
    fresh_database "meridian_bench_ledger_$batch"
    "$bench" append "$server/meridian_bench_ledger_$batch" "$leaves" "$batch"
done

echo "== proofs"
"$bench" prove "sqlite:$work/ledger-append-1000" 10000
"$bench" prove "$server/meridian_bench_ledger_1000" 10000
rm -rf "$work/ledger-big"
"$bench" tiles "sqlite:$work/ledger-big" "$big"
"$bench" prove "sqlite:$work/ledger-big" 10000
fresh_database meridian_bench_ledger_big
"$bench" tiles "$server/meridian_bench_ledger_big" "$big"
"$bench" prove "$server/meridian_bench_ledger_big" 10000

echo "== import, with the log and without"
[ -n "${BASELINE:-}" ] || { echo "set BASELINE to a meridian binary from before the log"; exit 2; }
synthea="$work/synthea-120/blaze-synthea"
if [ ! -d "$synthea/bundles" ]; then
    mkdir -p "$work/synthea-120"
    tar -xJf ../shared/corpora/synthea-120.tar.xz -C "$work/synthea-120"
fi
region="$work/region-10000"
[ -d "$region" ] || "$meridian" seed --patients 10000 --out "$region"
for dataset in synthea region; do
    if [ "$dataset" = synthea ]; then input=("$synthea/bundles" "$synthea/bundles-over-4MiB"); else input=("$region"); fi
    for store in sqlite postgres; do
        for build in baseline current; do
            binary=$([ "$build" = baseline ] && echo "$BASELINE" || echo "$meridian")
            case "$store" in
                sqlite) rm -rf "$work/ab-sqlite"; target=(--data "$work/ab-sqlite") ;;
                postgres) fresh_database meridian_bench_ab; target=(--database-url "$server/meridian_bench_ab") ;;
            esac
            start=$(date +%s.%N)
            "$binary" import "${target[@]}" "${input[@]}" > "$work/ab-$dataset-$store-$build.log" 2>&1
            end=$(date +%s.%N)
            loaded=$(grep -oE '[0-9,]+ resources' "$work/ab-$dataset-$store-$build.log" | tail -1 | tr -d ', resources')
            leaves=$("$meridian" ledger verify "${target[@]}" 2>&1 | grep -oE '^[0-9]+ leaves' || true)
            echo "$dataset $store $build: $loaded resources in $(echo "$end - $start" | bc) s: $(echo "$loaded / ($end - $start)" | bc) resources/s; ${leaves:-no log}"
        done
    done
done
