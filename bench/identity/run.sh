#!/usr/bin/env bash
# The identity benchmarks behind BENCHMARKS.md ("Resident identity"): accuracy on FEBRL 1-3 and on
# generated regional data, matching one record against 1M people, deduplicating 1M records.
# Release build; about five minutes on the 2-core development machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p identity-bench
bin="${CARGO_TARGET_DIR:-target}/release/identity-bench"
"$bin" febrl ../shared/corpora/febrl
"$bin" regional 20000
"$bin" index 1000000 10000
"$bin" dedup 1000000
