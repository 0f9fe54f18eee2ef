"""`$viewdefinition-run` with `_format=parquet`, from outside: posts the view with Python's own
HTTP client and reads the answer with pyarrow. Prints the answer's content type, its Arrow
schema (column: type) and its rows sorted by `id`, as one JSON object.

    parquet_check.py ADDRESS TOKEN VIEW_JSON
"""
import io
import json
import os
import sys
import urllib.request

import pyarrow.parquet as pq

address, token, view = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
body = json.dumps({"resourceType": "Parameters", "parameter": [
    {"name": "viewResource", "resource": view},
    {"name": "_format", "valueCode": "parquet"}]})
request = urllib.request.Request(
    f"http://{address}/fhir/$viewdefinition-run", data=body.encode(),
    headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"})
with urllib.request.urlopen(request) as answer:
    content_type, data = answer.headers["Content-Type"], answer.read()
table = pq.read_table(io.BytesIO(data), use_threads=False)
rows = sorted(table.to_pylist(), key=lambda row: row["id"])
print(json.dumps({"content_type": content_type, "rows": rows,
                  "schema": {field.name: str(field.type) for field in table.schema}},
                 ensure_ascii=False), flush=True)
# pyarrow's thread pools sometimes abort the interpreter's shutdown ("terminate called
# without an active exception", after the answer was read and printed): leave without it.
os._exit(0)
