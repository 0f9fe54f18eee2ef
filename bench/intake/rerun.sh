#!/usr/bin/env bash
# Runs the intake benchmark again on the store `run.sh sqlite` left (BENCHMARKS.md, "Where the
# time goes as the store grows"): serves it, has the model of the master patient index
# estimated once if it never was (a fresh seeded store re-estimates it on a thread of its own
# otherwise, which would compete with the run), and sends READINGS more readings. Each run
# adds its readings to the store, so successive runs measure a growing store.
#
#   bench/intake/rerun.sh [READINGS]      (default 40000)
#
# Environment: BENCH_DIR (default target/bench), BENCH_PER_UPLOAD (50), MERIDIAN (the binary;
# default the release build).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
target="${CARGO_TARGET_DIR:-target}/release"
meridian="${MERIDIAN:-$target/meridian}"
listen=127.0.0.1:18083
store=(--data "$work/intake-sqlite")
[ -f "$work/intake-devices.txt" ] || { echo "run bench/intake/run.sh sqlite first" >&2; exit 2; }
pgrep -x mosquitto > /dev/null || mosquitto -d -c /etc/mosquitto/mosquitto.conf
"$meridian" serve --listen "$listen" "${store[@]}" --mqtt 127.0.0.1:1883 --log warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://$listen/health/ready" > /dev/null && break
    sleep 0.2
done
admin="$("$meridian" token "${store[@]}")"
call() {
    curl -sf -X "$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/fhir+json' \
        "http://$listen/fhir/$2" ${3:+-d "$3"}
}
if call GET 'Person/$model' | grep -q '"valueCode":"built-in"'; then
    call POST 'Person/$estimate-model' '{"resourceType":"Parameters"}' > /dev/null
fi
"$target/intake-bench" 127.0.0.1:1883 "$work/intake-devices.txt" "$work/intake-residents.txt" \
    "${1:-40000}" "${BENCH_PER_UPLOAD:-50}"
