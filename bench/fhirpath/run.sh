#!/usr/bin/env bash
# Runs the FHIRPath search-parameter workload on the Meridian engine and on the reference
# JavaScript engine (fhirpath.js) in the same run, and prints the throughput ratio.
#
#   bench/fhirpath/run.sh [--bundles N] [--passes N] [DATA_DIR]
#
# DATA_DIR holds the Synthea sample's bundles/ (default: /tmp/corp/synthea-120/blaze-synthea,
# else the archive in ../shared/corpora unpacked into target/). Both engines are single
# threaded; run it on an otherwise quiet machine and compare the ratio, not absolute figures.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

bundles=()
passes=3
data=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundles) bundles=(--bundles "$2"); shift 2 ;;
    --passes) passes="$2"; shift 2 ;;
    *) data="$1"; shift ;;
  esac
done

if [ -z "$data" ]; then
  if [ -d /tmp/corp/synthea-120/blaze-synthea/bundles ]; then
    data=/tmp/corp/synthea-120/blaze-synthea
  else
    data="$target/synthea-120/blaze-synthea"
    if [ ! -d "$data/bundles" ]; then
      archive="$root/../shared/corpora/synthea-120.tar.xz"
      echo "unpacking $archive into $target/synthea-120" >&2
      mkdir -p "$target/synthea-120"
      tar -xJf "$archive" -C "$target/synthea-120"
      if [ ! -d "$data/bundles" ]; then
        data="$(dirname "$(find "$target/synthea-120" -type d -name bundles | head -n 1)")"
      fi
    fi
  fi
fi

if [ ! -d "$here/node_modules/fhirpath" ]; then
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

cargo build --release -p fhirpath-bench --manifest-path "$root/Cargo.toml" >&2
workload="$(mktemp)"
trap 'rm -f "$workload" "$workload.rust" "$workload.js"' EXIT

echo "== meridian fhirpath (Rust), data: $data" >&2
"$target/release/fhirpath-bench" "${bundles[@]}" --passes "$passes" --workload "$workload" "$data" | tee "$workload.rust"
echo "== fhirpath.js (reference)" >&2
node "$here/reference.js" "$workload" "$data" "${bundles[@]}" --passes "$passes" | tee "$workload.js"

rate() { grep '^resources per second:' "$1" | awk '{print $4}'; }
rust="$(rate "$workload.rust")"
js="$(rate "$workload.js")"
echo "ratio (Rust / fhirpath.js resources per second): $(awk -v a="$rust" -v b="$js" 'BEGIN { printf "%.1f", a / b }')x"
