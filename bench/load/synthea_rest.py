#!/usr/bin/env python3
"""Loads the Synthea sample through the REST API of a running server and checks it came back.

    synthea_rest.py BASE_URL BUNDLE_DIR...

POSTs every Bundle (the batch Bundles of organisations and practitioners first, as the file
names sort) to BASE_URL, then reads every resource of every 10th Bundle back by the location
the transaction response gave and compares it with what was sent: the same JSON once `id` and
`meta` are set aside and the bundle's `urn:uuid:` references are replaced by the locations
they resolved to (a conditional reference may resolve to any resource of its type). Prints the load rate and the comparison; exits non-zero on any difference
or failed entry. Standard library only.
"""

import json
import sys
import time
import urllib.request
from pathlib import Path


def request(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/fhir+json")
    req.add_header("Accept", "application/fhir+json")
    with urllib.request.urlopen(req, timeout=600) as response:
        return json.load(response)


def replace_references(value, locations):
    """`Reference.reference` values that name a bundle entry, replaced by where it went
    (identifiers whose value happens to be a full URL stay as they are)."""
    if isinstance(value, dict):
        return {
            k: locations.get(v, v) if k == "reference" and isinstance(v, str) else replace_references(v, locations)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [replace_references(v, locations) for v in value]
    return value


def same(expected, stored):
    """Equal JSON, where a conditional reference (`Type?criteria`) sent stands for whatever
    reference it resolved to."""
    if isinstance(expected, dict):
        return isinstance(stored, dict) and expected.keys() == stored.keys() and all(
            same(v, stored[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(stored, list) and len(expected) == len(stored) and all(
            same(a, b) for a, b in zip(expected, stored)
        )
    if isinstance(expected, str) and "?" in expected and expected.split("?")[0].isalpha():
        return isinstance(stored, str) and stored.startswith(expected.split("?")[0] + "/")
    return expected == stored


def without_id_and_meta(resource):
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def main():
    base = sys.argv[1].rstrip("/")
    files = sorted(p for d in sys.argv[2:] for p in Path(d).glob("*.json"))
    sent, checked, differences, failed = 0, 0, 0, 0
    started = time.monotonic()
    kept = []
    for n, path in enumerate(files):
        bundle = json.loads(path.read_text())
        response = request("POST", base, bundle)
        entries = bundle.get("entry", [])
        sent += len(entries)
        locations = {}
        for entry, answer in zip(entries, response.get("entry", [])):
            status = answer.get("response", {}).get("status", "")
            if not status.startswith("2"):
                failed += 1
                continue
            location = answer["response"].get("location", "")
            # "Type/id/_history/n" -> "Type/id"
            type_and_id = "/".join(location.split("/_history")[0].split("/")[-2:])
            if entry.get("fullUrl", "").startswith("urn:uuid:"):
                locations[entry["fullUrl"]] = type_and_id
            entry["_location"] = type_and_id
        if n % 10 == 0:
            kept.append((entries, locations))
    seconds = time.monotonic() - started
    print(f"{len(files)} bundles, {sent} resources in {seconds:.1f} s ({sent / seconds:.0f}/s), {failed} failed entries")
    for entries, locations in kept:
        for entry in entries:
            if "_location" not in entry or "resource" not in entry:
                continue
            stored = request("GET", f"{base}/{entry['_location']}")
            expected = without_id_and_meta(replace_references(entry["resource"], locations))
            checked += 1
            if not same(expected, without_id_and_meta(stored)):
                differences += 1
                if differences <= 3:
                    print(f"differs: {entry['_location']}")
    metadata = request("GET", f"{base}/metadata")
    print(f"read back {checked} resources: {differences} differ; metadata: {metadata.get('resourceType')} {metadata.get('fhirVersion')}")
    sys.exit(1 if differences or failed else 0)


if __name__ == "__main__":
    main()
