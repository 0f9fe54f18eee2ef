#!/usr/bin/env bash
# The load test behind BENCHMARKS.md ("Load test"): a running `meridian serve` driven by hey, a
# real HTTP load generator (Debian package `hey`), at fixed request rates: reads by id, searches
# and Patient/$everything, reporting the throughput reached and p50/p99 latency. hey sends one
# URL per run, so each kind of request is run for a few URLs picked from the store and the
# figures reported per URL. (hey waits for each worker's previous answer, so a stalled server
# shows as a lower achieved rate rather than as latency: compare achieved with target.)
#
#   bench/load/run.sh [--data DIR | --database-url URL]
#
# Without a store, a 10,000-resident region (seed 1, about 138,000 resources) is generated
# into target/bench/load-sqlite first. Environment: BENCH_DIR (default target/bench),
# BENCH_SECONDS (per step, default 15), BENCH_READ_RATES (default "500 1000 2000"),
# BENCH_SEARCH_RATES (default "100 250 500"), BENCH_EVERYTHING_RATES (default "10 25"),
# BENCH_WRITE_RATE (creates a second in the mixed step, default 20) and BENCH_FLOOD_CLIENTS
# (readers in the mixed step, default 200). The mixed step creates Observations at a fixed
# rate, alone and then under a flood of readers with no rate limit: a write must keep a
# bounded latency however many clients read.
#
# Access (issue 14): BENCH_AUTH=none runs a build from before sign-in; BENCH_AUTH=off serves
# with `--auth off` (no sign-in: every request acts
# as the administrator, still audited); otherwise every request carries a bearer token, of the
# administrator (BENCH_AS=admin, the default: signature and revocation checks and the audit,
# no access rule narrows what is seen) or of a clinician holding one PractitionerRole
# at the institution that registered the first resident (BENCH_AS=clinician: the rule applies;
# the URL lists hold what that clinician sees).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")"
seconds="${BENCH_SECONDS:-15}"
listen=127.0.0.1:18080
base="http://$listen/fhir"
mkdir -p "$work"

command -v hey > /dev/null || { echo "needs hey (apt-get install hey)"; exit 2; }
# MERIDIAN_BIN runs another build (an older commit's, for a before/after comparison).
if [ -n "${MERIDIAN_BIN:-}" ]; then
    meridian="$MERIDIAN_BIN"
else
    cargo build --release -p meridian
    meridian="${CARGO_TARGET_DIR:-target}/release/meridian"
fi

store=("$@")
if [ ${#store[@]} -eq 0 ]; then
    store=(--data "$work/load-sqlite")
    if [ ! -d "$work/load-sqlite" ]; then
        "$meridian" seed --patients 10000 --data "$work/load-sqlite"
    fi
fi

auth=()
[ "${BENCH_AUTH:-on}" = off ] && auth=(--auth off)
"$meridian" serve "${store[@]}" --listen "$listen" --log warn "${auth[@]}" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://$listen/health/ready" > /dev/null && break
    sleep 0.2
done
curl -sf "http://$listen/health/ready" > /dev/null

token=""
if [ "${BENCH_AUTH:-on}" = on ]; then
    token=$("$meridian" token "${store[@]}")
    if [ "${BENCH_AS:-admin}" = clinician ]; then
        # A role at the institution that registered the first resident (it holds records).
        holder=$(curl -sf -H "Authorization: Bearer $token" "$base/Patient?_count=1" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["managingOrganization"]["reference"])')
        role=$(curl -sf -H "Authorization: Bearer $token" "$base/PractitionerRole?organization=$holder&_count=1&_elements=id" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
        openssl rand -hex 16 | "$meridian" user add bench-clinician --password-stdin \
            --practitioner-role "PractitionerRole/$role" "${store[@]}" > /dev/null 2>&1 || true
        token=$("$meridian" token "${store[@]}" --user bench-clinician)
    fi
fi
export BENCH_TOKEN="$token"
bearer=()
[ -n "$token" ] && bearer=(-H "Authorization: Bearer $token")

# URL lists: 2,000 patients and 2,000 observations of them, as stored.
python3 - "$base" "$work" <<'PY'
import json, os, sys, urllib.request
base, work = sys.argv[1], sys.argv[2]
token = os.environ.get("BENCH_TOKEN")
def get(url):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as response:
        return json.load(response)
def ids(bundle):
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
patients = ids(get(f"{base}/Patient?_count=1000&_elements=id"))
page = get(f"{base}/Patient?_count=1000&_elements=id")
for link in page.get("link", []):
    if link["relation"] == "next":
        patients += ids(get(link["url"]))
observations = ids(get(f"{base}/Observation?_count=1000&_elements=id"))
codes = ["85354-9", "2339-0", "4548-4", "8480-6", "29463-7", "8867-4"]
with open(f"{work}/urls-read.txt", "w") as f:
    for i in range(4000):
        if i % 2 == 0:
            f.write(f"{base}/Patient/{patients[i // 2 % len(patients)]}\n")
        else:
            f.write(f"{base}/Observation/{observations[i // 2 % len(observations)]}\n")
with open(f"{work}/urls-search.txt", "w") as f:
    for i, p in enumerate(patients):
        f.write(f"{base}/Observation?patient={p}&code={codes[i % len(codes)]}\n")
        f.write(f"{base}/Encounter?subject=Patient/{p}&date=ge2015\n")
with open(f"{work}/observation.json", "w") as f:
    json.dump({"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
               "subject": {"reference": f"Patient/{patients[0]}"},
               "effectiveDateTime": "2026-11-30T10:00:00+08:00",
               "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}, f)
with open(f"{work}/urls-everything.txt", "w") as f:
    for p in patients:
        f.write(f"{base}/Patient/{p}/$everything?_count=1000\n")
print(f"{len(patients)} patients, {len(observations)} observations in the URL lists", file=sys.stderr)
PY

# report NAME RATE FILE: one table row from hey's output.
report() {
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys
name, rate, path = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
achieved = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = float(re.search(r"50%+ in ([\d.]+) secs", text).group(1)) * 1e3
p99 = float(re.search(r"99%+ in ([\d.]+) secs", text).group(1)) * 1e3
codes = dict((int(c), int(n)) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text))
ok = sum(n for c, n in codes.items() if 200 <= c < 300)
print(f"| {name} | {rate} | {achieved:.0f} | {p50:.2f} | {p99:.2f} | {ok} of {sum(codes.values())} |")
PY
}

# step NAME RATE URL: hey at RATE requests/s (10 workers) for the step's seconds.
step() {
    local name=$1 rate=$2 url=$3
    local workers=10
    hey -z "${seconds}s" -c "$workers" -q $(( (rate + workers - 1) / workers )) \
        -H "Accept: application/fhir+json" "${bearer[@]}" "$url" > "$work/hey.txt"
    report "$name" "$rate" "$work/hey.txt"
}

# creates NAME: Observations of one patient created at BENCH_WRITE_RATE a second (2 workers).
creates() {
    local rate=${BENCH_WRITE_RATE:-20}
    hey -z "${seconds}s" -c 2 -q $(( (rate + 1) / 2 )) -m POST -T application/fhir+json \
        "${bearer[@]}" -D "$work/observation.json" "$base/Observation" > "$work/hey-write.txt"
    report "$1" "$rate" "$work/hey-write.txt"
}

# A few URLs of each kind (from the lists written above).
read_urls=$(sed -n '1p;2p' "$work/urls-read.txt")
search_urls=$(sed -n '1p;2p' "$work/urls-search.txt")
everything_url=$(sed -n '1p' "$work/urls-everything.txt")

echo "| request | target rate (req/s) | achieved (req/s) | p50 ms | p99 ms | 2xx |"
echo "|---|---|---|---|---|---|"
for rate in ${BENCH_READ_RATES:-500 1000 2000}; do
    for url in $read_urls; do
        step "read ${url#"$base"/}" "$rate" "$url"
    done
done
for rate in ${BENCH_SEARCH_RATES:-100 250 500}; do
    for url in $search_urls; do
        step "search ${url#"$base"/}" "$rate" "$url"
    done
done
for rate in ${BENCH_EVERYTHING_RATES:-10 25}; do
    step "\$everything ${everything_url#"$base"/}" "$rate" "$everything_url"
done

# Mixed: creates alone, then the same creates while BENCH_FLOOD_CLIENTS readers search with
# no rate limit (their row: the rate they reached).
flood=${BENCH_FLOOD_CLIENTS:-200}
search_url=$(sed -n '1p' "$work/urls-search.txt")
creates "create Observation, idle"
hey -z "$((seconds + 4))s" -c "$flood" -H "Accept: application/fhir+json" "${bearer[@]}" "$search_url" > "$work/hey-flood.txt" &
flood_pid=$!
sleep 2
creates "create Observation, $flood readers"
wait "$flood_pid"
report "search ${search_url#"$base"/}, $flood readers" "unlimited" "$work/hey-flood.txt"
