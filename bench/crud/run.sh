#!/usr/bin/env bash
# The CRUD workload of the public FHIR server benchmarks (issue 21, "Concurrent writers"): a
# fresh `meridian serve --auth off` (release), then `crud-bench` with 1, 16, 64 and 256 clients
# on kept-alive connections, each creating, reading, updating and deleting a resource of its
# own in turn: Patients (each registration matched by the master index) and Observations.
# The load generator runs on the same cores as the server.
#
#   bench/crud/run.sh [sqlite|postgres|citus] [SECONDS]
#
# Environment: BENCH_DIR (default target/bench), BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432), BENCH_CLIENTS (default "1 16 64 256"), BENCH_CITUS_SHARDS
# (shards a table on the local Citus cluster, bench/citus/database.sh; default 8), BENCH_BIN (a
# directory holding the `meridian` and `crud-bench` binaries to run instead of building them:
# an earlier build, to compare two builds on the same machine in one sitting), BENCH_KINDS
# (default "patient observation"), CRUD_BENCH_RESIDENTS (`lockstep`: the Patient generator up to
# b445fe7, whose residents all share one name key and, cycle by cycle, one birth date; by
# default distinct names and birth dates spread over 90 years). The server reads its own
# MERIDIAN_* variables too: MERIDIAN_SQLITE_SYNCHRONOUS=normal runs the embedded store with
# SQLite's synchronous = NORMAL (as Helios HFS ships), to compare like with like.
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
backend="${1:-sqlite}"
seconds="${2:-10}"
listen=127.0.0.1:18083
mkdir -p "$work"
if [ -n "${BENCH_BIN:-}" ]; then
    target="$BENCH_BIN"
else
    cargo build --release -p meridian -p crud-bench >&2
    target="${CARGO_TARGET_DIR:-target}/release"
fi
rm -rf "$work/crud-$backend"
case "$backend" in
    sqlite) store=(--data "$work/crud-$backend") ;;
    postgres)
        psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS meridian_bench_crud" -c "CREATE DATABASE meridian_bench_crud"
        store=(--database-url "$server/meridian_bench_crud" --data "$work/crud-$backend")
        ;;
    citus)
        url="$(bench/citus/database.sh meridian_bench_crud "${BENCH_CITUS_SHARDS:-8}")"
        store=(--database-url "$url" --data "$work/crud-$backend")
        ;;
    *) echo "sqlite, postgres or citus" >&2; exit 2 ;;
esac
"$target/meridian" serve "${store[@]}" --auth off --listen "$listen" > "$work/crud-$backend.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$listen/health/ready" > /dev/null && break; sleep 0.2; done
for kind in ${BENCH_KINDS:-patient observation}; do
    for clients in ${BENCH_CLIENTS:-1 16 64 256}; do
        echo "$backend $("$target/crud-bench" "http://$listen/fhir" "$clients" "$seconds" "$kind")"
    done
done
