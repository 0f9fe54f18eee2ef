#!/usr/bin/env bash
# Builds every fuzz target and runs each for the given number of seconds (default 60), one
# after another, then prints each target's executions, speed, corpus and findings.
# Usage: fuzz/run.sh [seconds-per-target] [target...]
#
# Toolchain: cargo fuzz needs nightly flags (-Z...). Only stable Rust is installed, so
# RUSTC_BOOTSTRAP=1 lets stable accept them. Sanitizer: none. Every crate of ours forbids
# unsafe code, so AddressSanitizer would mostly watch dependencies, at about half the speed;
# what the targets look for (panics, overflows, timeouts, memory blow-ups) libFuzzer sees
# without it. Debug assertions are on (-a), so arithmetic overflow panics as in tests.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fhir_json fhirpath search_query cursor ledger_note cds_hook subscription hl7v2 v2_map kiosk_reading dicom_part10 dicom_multipart jpegls ecg_sampled_data ecg_samples sql_view)

export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions --release)

# The longest input each target is given: a request body, an expression with a resource, a
# query string, a next link, a STOW part, a JPEG-LS frame, an ECG Observation or its samples.
max_len() {
    case "$1" in
        fhir_json) echo 16384 ;;
        fhirpath) echo 8192 ;;
        search_query) echo 2048 ;;
        ledger_note) echo 8192 ;;
        cds_hook) echo 16384 ;;
        subscription) echo 8192 ;;
        hl7v2) echo 16384 ;;
        v2_map) echo 16384 ;;
        kiosk_reading) echo 2048 ;;
        dicom_part10) echo 65536 ;;
        dicom_multipart) echo 4096 ;;
        jpegls) echo 32768 ;;
        ecg_sampled_data) echo 32768 ;;
        ecg_samples) echo 16384 ;;
        sql_view) echo 8192 ;;
        *) echo 1024 ;;
    esac
}

# cargo-fuzz itself, from crates.io, the first time.
cargo fuzz --version > /dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.2 --locked
cargo fuzz build "${flags[@]}"
mkdir -p logs
status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="logs/$target.log"
    dict=()
    [ -f "$target.dict" ] && dict=(-dict="$target.dict")
    # New inputs go to corpus/ (the first directory); seeds/ is only read.
    if ! cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
        status=1
    fi
done

# corpus: libFuzzer's own count at the end (inputs that each add coverage); findings: crash,
# timeout and out-of-memory inputs left in artifacts/ by this run and earlier ones.
printf '\n%-17s %12s %9s %8s %s\n' target executions exec/s corpus findings
for target in "${targets[@]}"; do
    log="logs/$target.log"
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    # A target stopped on a finding has no DONE line (and grep's failure must not end the script).
    corpus=$({ grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || true; } | tail -1 | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    findings=$(find "artifacts/$target" -type f | wc -l)
    printf '%-17s %12s %9s %8s %s\n' "$target" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "${corpus:--}" "$findings"
done
[ "$status" -eq 0 ] || echo "a target stopped on a finding: see fuzz/logs/ and fuzz/artifacts/"
exit "$status"
