#!/usr/bin/env bash
# The workflow benchmark behind BENCHMARKS.md ("Care across levels (issue 17)"): a running
# `meridian serve` (sign-in on) on a fresh store, a township and a county with a clinician
# each (accounts and tokens from `meridian user add` and `meridian token`), then
# `workflow-bench`: consultations moved through their states, the time to each rest-hook
# notification, bookings of free slots and 50 clients booking 10 slots.
#
#   bench/workflow/run.sh [sqlite|postgres]
#
# Environment: BENCH_DIR (default target/bench), BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432), BENCH_CONSULTATIONS (200), BENCH_SLOTS (500),
# BENCH_CLIENTS (4).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
listen=127.0.0.1:18082
backend="${1:-sqlite}"
mkdir -p "$work"

cargo build --release -p meridian -p workflow-bench
target="${CARGO_TARGET_DIR:-target}/release"

case "$backend" in
    sqlite)
        rm -rf "$work/workflow-sqlite"
        store=(--data "$work/workflow-sqlite")
        ;;
    postgres)
        psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS meridian_bench_workflow" \
            -c "CREATE DATABASE meridian_bench_workflow"
        store=(--database-url "$server/meridian_bench_workflow" --data "$work/workflow-pg-data")
        ;;
    *) echo "sqlite or postgres" >&2; exit 2 ;;
esac

"$target/meridian" serve --listen "$listen" "${store[@]}" --log warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://$listen/health/ready" > /dev/null && break
    sleep 0.2
done
admin="$("$target/meridian" token "${store[@]}")"
put() {
    curl -sf -X PUT -H "Authorization: Bearer $admin" -H 'Content-Type: application/fhir+json' \
        "http://$listen/fhir/$1" -d "$2" > /dev/null
}
put Organization/bench-county '{"resourceType":"Organization","id":"bench-county","name":"County hospital"}'
put Organization/bench-township '{"resourceType":"Organization","id":"bench-township","name":"Township centre","partOf":{"reference":"Organization/bench-county"}}'
for who in township:bench-township:bench-doctor county:bench-county:bench-expert; do
    IFS=: read -r name org role <<< "$who"
    put "Practitioner/$role" "{\"resourceType\":\"Practitioner\",\"id\":\"$role\"}"
    put "PractitionerRole/$role" "{\"resourceType\":\"PractitionerRole\",\"id\":\"$role\",\"active\":true,\"practitioner\":{\"reference\":\"Practitioner/$role\"},\"organization\":{\"reference\":\"Organization/$org\"}}"
    echo "bench password $name" | "$target/meridian" user add "bench-$name" --password-stdin \
        --practitioner-role "PractitionerRole/$role" "${store[@]}" > /dev/null
done
township="$("$target/meridian" token --user bench-township "${store[@]}")"
county="$("$target/meridian" token --user bench-county "${store[@]}")"
curl -sf -X PUT -H "Authorization: Bearer $township" -H 'Content-Type: application/fhir+json' \
    "http://$listen/fhir/Patient/bench-patient" -d '{"resourceType":"Patient","id":"bench-patient","name":[{"family":"Li"}]}' > /dev/null
curl -sf -X PUT -H "Authorization: Bearer $township" -H 'Content-Type: application/fhir+json' \
    "http://$listen/fhir/Observation/bench-ecg" -d '{"resourceType":"Observation","id":"bench-ecg","status":"final","code":{"text":"ECG"},"subject":{"reference":"Patient/bench-patient"}}' > /dev/null
put HealthcareService/bench-clinic '{"resourceType":"HealthcareService","id":"bench-clinic","providedBy":{"reference":"Organization/bench-county"}}'
curl -sf -X PUT -H "Authorization: Bearer $county" -H 'Content-Type: application/fhir+json' \
    "http://$listen/fhir/Schedule/bench-clinic" -d '{"resourceType":"Schedule","id":"bench-clinic","actor":[{"reference":"HealthcareService/bench-clinic"}]}' > /dev/null

echo "== $backend"
"$target/workflow-bench" --origin "http://$listen" --admin "$admin" --township "$township" --county "$county" \
    --consultations "${BENCH_CONSULTATIONS:-200}" --slots "${BENCH_SLOTS:-500}" --clients "${BENCH_CLIENTS:-4}"
