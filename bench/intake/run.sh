#!/usr/bin/env bash
# The intake benchmark behind BENCHMARKS.md ("Intake (issue 18)"): a seeded region in a fresh
# store (sqlite: the embedded store, the issue's target; or postgres), `meridian serve --mqtt`
# on the Mosquitto of this machine, KIOSKS kiosks registered as Devices with their secrets,
# then `intake-bench`: every upload published (QoS 1) and every acknowledgement awaited.
#
#   bench/intake/run.sh [sqlite|postgres] [again]
#
# With `again`, the store, its kiosks and residents of the last run are kept and served anew,
# and the readings are added to it: successive runs measure a growing store (BENCHMARKS.md,
# "Where the time goes as the store grows").
#
# Environment: BENCH_DIR (default target/bench), BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432), BENCH_RESIDENTS (20000), BENCH_KIOSKS (100),
# BENCH_READINGS (100000), BENCH_PER_UPLOAD (50), BENCH_SERVER (the `meridian` binary to
# measure: default the one built here; another build's copy compares two versions in one
# session, on one seeded store layout).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
server="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
listen=127.0.0.1:18083
backend="${1:-sqlite}"
again="${2:-}"
kiosks="${BENCH_KIOSKS:-100}"
mkdir -p "$work"

target="${CARGO_TARGET_DIR:-target}/release"
if [ -n "${BENCH_SERVER:-}" ]; then
    cargo build --release -p intake-bench
    meridian="$BENCH_SERVER"
else
    cargo build --release -p meridian -p intake-bench
    meridian="$target/meridian"
fi

case "$backend" in
    sqlite) store=(--data "$work/intake-sqlite") ;;
    postgres) store=(--database-url "$server/meridian_bench_intake" --data "$work/intake-pg-data") ;;
    *) echo "sqlite or postgres" >&2; exit 2 ;;
esac
if [ "$again" != again ]; then
    case "$backend" in
        sqlite) rm -rf "$work/intake-sqlite" ;;
        postgres)
            psql "$server/postgres" -q -c "DROP DATABASE IF EXISTS meridian_bench_intake" \
                -c "CREATE DATABASE meridian_bench_intake"
            ;;
    esac
    "$meridian" seed --patients "${BENCH_RESIDENTS:-20000}" --seed 11 "${store[@]}" > /dev/null
elif [ ! -f "$work/intake-devices.txt" ]; then
    echo "no earlier run to go on from: run without 'again' first" >&2
    exit 2
fi
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
if [ "$again" != again ]; then
    call GET "Patient?_count=1000&_elements=identifier" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["entry"]:
    for i in e["resource"].get("identifier", []):
        if i["system"] == "urn:oid:2.16.156.10011.1.3": print(i["value"])' > "$work/intake-residents.txt"
    clinic="$(call GET "Device?_count=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["owner"]["reference"])')"
    : > "$work/intake-devices.txt"
    for n in $(seq 1 "$kiosks"); do
        device="bench-kiosk-$n"
        call PUT "Device/$device" "{\"resourceType\":\"Device\",\"id\":\"$device\",\"status\":\"active\",\"owner\":{\"reference\":\"$clinic\"}}" > /dev/null
        secret="$(call POST "Device/$device/\$issue-secret" '{"resourceType":"Parameters"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["parameter"][0]["valueString"])')"
        echo "$device $secret" >> "$work/intake-devices.txt"
    done
fi
# The seeded store's matching model, estimated now rather than by the schedule during the run
# (once: a store whose model was estimated keeps it).
if call GET 'Person/$model' | grep -q '"valueCode":"built-in"'; then
    call POST 'Person/$estimate-model' '{"resourceType":"Parameters"}' > /dev/null
fi
before="$(call GET "Observation?_summary=count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')"
written() { awk '/^write_bytes/ {print $2}' "/proc/$pid/io"; }
written_before="$(written)"
# The server's CPU time (user + system, in clock ticks): what a reading costs it, which moves
# less with the VM's neighbours than readings/s.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
cpu_before="$(cpu_ticks)"
"$target/intake-bench" 127.0.0.1:1883 "$work/intake-devices.txt" "$work/intake-residents.txt" \
    "${BENCH_READINGS:-100000}" "${BENCH_PER_UPLOAD:-50}"
after="$(call GET "Observation?_summary=count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')"
echo "observations written: $((after - before))"
# What the server wrote to disk (WAL, checkpoints, trail) per Observation: the figure that
# moves with the store's layout, where the throughput also moves with the machine's load.
echo "bytes written by the server per Observation: $(( ($(written) - written_before) / (after - before > 0 ? after - before : 1) ))"
echo "server CPU per Observation: $(( ($(cpu_ticks) - cpu_before) * 1000000 / $(getconf CLK_TCK) / (after - before > 0 ? after - before : 1) )) µs"
