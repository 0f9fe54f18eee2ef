"""Materialised views read from outside, as a province's analysts read them: each view's
directory read whole by pyarrow as one dataset, and compared with the rows `meridian view run`
wrote as NDJSON for the same view over the same store (computed from scratch). Prints one JSON
object: for each view its row count, Arrow schema (column: type) and the differences (rows in
one and not the other, at most five each way).

    materialised_check.py VIEWS_DIR NAME=ROWS.ndjson ...
"""
import datetime
import decimal
import json
import os
import sys

import pyarrow.parquet as pq


def normalised(value, arrow_type):
    """An NDJSON value as pyarrow gives the column's type back, or pyarrow's value as is."""
    if value is None:
        return None
    kind = str(arrow_type)
    if kind.startswith("decimal"):
        return decimal.Decimal(str(value)).normalize()
    if kind.startswith("timestamp"):
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value.astimezone(datetime.timezone.utc)
    return value


def key(row, schema):
    return tuple(json.dumps(normalised(row[f.name], f.type), default=str, sort_keys=True)
                 for f in schema)


views_dir, report = sys.argv[1], {}
for argument in sys.argv[2:]:
    name, rows_file = argument.split("=", 1)
    table = pq.read_table(os.path.join(views_dir, name), use_threads=False)
    schema = table.schema
    stored = sorted(key(row, schema) for row in table.to_pylist())
    with open(rows_file, encoding="utf-8") as f:
        fresh = sorted(key(json.loads(line), schema) for line in f if line.strip())
    only_stored = sorted(set(stored) - set(fresh))[:5]
    only_fresh = sorted(set(fresh) - set(stored))[:5]
    report[name] = {"rows": len(stored), "fresh_rows": len(fresh),
                    "schema": {f.name: str(f.type) for f in schema},
                    "only_materialised": only_stored, "only_fresh": only_fresh}
print(json.dumps(report, ensure_ascii=False), flush=True)
# pyarrow's thread pools sometimes abort the interpreter's shutdown: leave without it.
os._exit(0)
