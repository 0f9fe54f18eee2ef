#!/usr/bin/env python3
"""Writes fuzz/seeds/sql_view/ from the vendored SQL on FHIR v2 suite
(crates/analytics/tests/sql-on-fhir-v2/tests): every third test's view, a NUL byte, and its
file's resources one a line (minified). Run by hand; the seeds are committed."""

import json
import os

here = os.path.dirname(os.path.abspath(__file__))
suite = os.path.join(here, "..", "..", "crates", "analytics", "tests", "sql-on-fhir-v2", "tests")
out = os.path.join(here, "sql_view")
os.makedirs(out, exist_ok=True)
count = 0
for name in sorted(os.listdir(suite)):
    with open(os.path.join(suite, name), encoding="utf-8") as f:
        file = json.load(f)
    resources = "\n".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in file["resources"])
    for number, test in enumerate(file["tests"]):
        if (count := count + 1) % 3:
            continue
        view = json.dumps(test["view"], separators=(",", ":"), ensure_ascii=False)
        data = (view + "\0" + resources).encode("utf-8")
        with open(os.path.join(out, f"{name[:-5]}-{number}"), "wb") as f:
            f.write(data)
