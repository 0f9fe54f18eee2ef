#!/usr/bin/env bash
# Imaging side by side (BENCHMARKS.md, "Imaging"): Meridian (release, the embedded store, sign-in
# on) and Orthanc with its DICOMweb plugin (Debian's orthanc, orthanc-dicomweb and orthanc-gdcm,
# installed here when missing), fresh stores, the same instances, then bench.py.
#
#   bench/imaging/run.sh [instances]      (default 100000)
#
# Environment: BENCH_DIR (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(realpath -m "${BENCH_DIR:-target/bench}")/imaging"
instances="${1:-100000}"
rm -rf "$work"
mkdir -p "$work"
command -v Orthanc > /dev/null || apt-get install -y -q orthanc orthanc-dicomweb orthanc-gdcm > /dev/null

cargo build --release -p meridian
target="${CARGO_TARGET_DIR:-target}/release"
"$target/meridian" serve --listen 127.0.0.1:18084 --data "$work/meridian" --log warn &
meridian=$!
cat > "$work/orthanc.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$work/orthanc", "IndexDirectory": "$work/orthanc",
  "HttpPort": 18042, "DicomServerEnabled": false, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "HttpCompressionEnabled": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "StudiesMetadata": "Full" } }
JSON
Orthanc "$work/orthanc.json" > "$work/orthanc.log" 2>&1 &
orthanc=$!
trap 'kill $meridian $orthanc 2>/dev/null; wait $meridian $orthanc 2>/dev/null' EXIT
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:18084/health/ready > /dev/null && curl -sf http://127.0.0.1:18042/system > /dev/null && break
    sleep 0.3
done
token="$("$target/meridian" token --data "$work/meridian")"
venv="$work/../imaging-venv"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q pydicom==3.0.2 requests==2.32.3; }
"$venv/bin/python" bench/imaging/bench.py --meridian http://127.0.0.1:18084/dicomweb --token "$token" \
    --orthanc http://127.0.0.1:18042/dicom-web --instances "$instances" --corpus crates/imaging/tests/dicom
