#!/usr/bin/env bash
# What PostgreSQL runs for the CRUD workload, statement by statement: a fresh database whose
# every statement is logged (`log_min_duration_statement = 0`), `meridian serve --auth off` on
# it, `crud-bench` with one client for a warm-up and then SECONDS measured, and the server's
# log grouped by statement (statements.py) from the measured run's start.
#
#   bench/crud/statements.sh [patient|observation] [SECONDS]
#
# Environment: BENCH_DIR (default target/bench), BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432), BENCH_BIN (a directory holding `meridian` and
# `crud-bench`, instead of building them), PG_LOG (default the cluster's log under
# /var/log/postgresql, which must be readable).
set -euo pipefail
cd "$(dirname "$0")/../.."
kind="${1:-observation}"
seconds="${2:-5}"
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
log="${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log | head -1)}"
listen=127.0.0.1:18084
if [ -n "${BENCH_BIN:-}" ]; then
    target="$BENCH_BIN"
else
    cargo build --release -p meridian -p crud-bench >&2
    target="${CARGO_TARGET_DIR:-target}/release"
fi
db=meridian_bench_statements
psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" \
    -c "ALTER DATABASE $db SET log_min_duration_statement = 0"
rm -rf "$work/statements"
mkdir -p "$work"
"$target/meridian" serve --database-url "$server/$db" --data "$work/statements" --auth off \
    --listen "$listen" > "$work/statements.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$listen/health/ready" > /dev/null && break; sleep 0.2; done
"$target/crud-bench" "http://$listen/fhir" 1 3 "$kind" > /dev/null
sleep 1
since="$(date -u '+%Y-%m-%d %H:%M:%S')"
"$target/crud-bench" "http://$listen/fhir" 1 "$seconds" "$kind"
sleep 1
python3 bench/crud/statements.py "$log" "$since"
