"""Reads a Parquet file the analytics crate wrote (the Observation view of every column type
in tests/it/parquet_file.rs) with pyarrow, pandas and DuckDB, and checks that each of them
finds the rows and types the writer meant.

    python parquet_check.py FILE

Prints one line per reader when everything matches; fails with the first difference. The
test that writes the file runs it in a virtual environment of its own with the versions it
pins (pyarrow, pandas, duckdb).
"""

import datetime
import decimal
import os
import sys

import duckdb
import pandas
import pyarrow as pa
import pyarrow.parquet as pq

D = decimal.Decimal
UTC = datetime.timezone.utc


def expect(what, actual, expected):
    if actual != expected:
        sys.exit(f"{what}:\n  expected {expected!r}\n  got      {actual!r}")


def check_pyarrow(path):
    table = pq.read_table(path)
    decimal_type = pa.decimal128(38, 18)
    expect(
        "pyarrow types",
        [(field.name, field.type) for field in table.schema],
        [
            ("id", pa.string()),
            ("status", pa.string()),
            ("final", pa.bool_()),
            ("issued", pa.timestamp("us", tz="UTC")),
            ("effective", pa.string()),
            ("recorded_on", pa.string()),
            ("value", decimal_type),
            ("quantity", pa.string()),
            ("count", pa.int32()),
            ("big_count", pa.int64()),
            ("at", pa.time64("us")),
            ("signature", pa.binary()),
            ("interpretations", pa.list_(pa.string())),
            ("components", pa.list_(decimal_type)),
            ("component_codes", pa.list_(pa.string())),
            ("position", pa.string()),
        ],
    )
    expect(
        "pyarrow nullability",
        {field.nullable for field in table.schema},
        {True},
    )
    expect(
        "field metadata",
        [
            (field.name, (field.metadata or {}).get(b"fhir.type"))
            for field in table.schema
            if field.name in ("value", "quantity", "issued", "position")
        ],
        [
            ("issued", b"instant"),
            ("value", b"decimal"),
            ("quantity", b"Quantity"),
            ("position", None),
        ],
    )
    expect(
        "schema metadata",
        {
            key: value
            for key, value in table.schema.metadata.items()
            if key.startswith(b"fhir.")
        },
        {b"fhir.resource": b"Observation", b"fhir.view": b"observation_values"},
    )
    rows = table.to_pylist()
    expect("rows", len(rows), 3)
    first, second, third = rows
    expect(
        "first row",
        first,
        {
            "id": "o1",
            "status": "final",
            "final": True,
            "issued": datetime.datetime(2020, 3, 15, 9, 30, 0, 123456, tzinfo=UTC),
            "effective": "2020-03",
            "recorded_on": "1970",
            "value": D("1.5"),
            "quantity": '{"value":1.50,"unit":"mmol/L"}',
            "count": None,
            "big_count": None,
            "at": None,
            "signature": b"hello",
            "interpretations": ["H", "HH"],
            "components": [D("120"), D("80.25")],
            "component_codes": ['{"text":"a"}', '{"text":"b"}'],
            "position": "0",
        },
    )
    expect("second row: integers", (second["count"], second["big_count"]), (42, 42))
    expect("second row: empty lists", second["interpretations"], [])
    expect("second row: a null timestamp", second["issued"], None)
    expect(
        "third row",
        (third["issued"], third["at"], third["recorded_on"]),
        (
            datetime.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime.time(14, 30, 0, 250000),
            "2021-02-28",
        ),
    )
    shape = f"{len(table.schema)} columns, {len(rows)} rows"
    return f"pyarrow {pa.__version__}: {shape}, types and values as written"


def check_pandas(path):
    frame = pandas.read_parquet(path)
    expect("pandas rows", len(frame), 3)
    expect("pandas final", frame["final"].tolist(), [True, False, True])
    expect("pandas issued type", str(frame["issued"].dtype), "datetime64[us, UTC]")
    expect(
        "pandas issued values",
        [None if pandas.isna(t) else t.isoformat() for t in frame["issued"]],
        ["2020-03-15T09:30:00.123456+00:00", None, "1969-12-31T23:59:59+00:00"],
    )
    expect("pandas value", frame["value"].tolist()[0], D("1.5"))
    # A nullable integer column is float64 in a data frame unless asked otherwise.
    expect(
        "pandas count",
        [None if pandas.isna(c) else int(c) for c in frame["count"]],
        [None, 42, None],
    )
    expect("pandas signature", frame["signature"].tolist()[0], b"hello")
    expect(
        "pandas components",
        [list(c) for c in frame["components"]],
        [[D("120"), D("80.25")], [], []],
    )
    return f"pandas {pandas.__version__}: the same rows as a data frame"


def check_duckdb(path):
    connection = duckdb.connect()
    source = f"read_parquet('{path}')"
    described = connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    types = {name: kind for name, kind, *_ in described}
    expect(
        "duckdb types",
        types,
        {
            "id": "VARCHAR",
            "status": "VARCHAR",
            "final": "BOOLEAN",
            "issued": "TIMESTAMP WITH TIME ZONE",
            "effective": "VARCHAR",
            "recorded_on": "VARCHAR",
            "value": "DECIMAL(38,18)",
            "quantity": "VARCHAR",
            "count": "INTEGER",
            "big_count": "BIGINT",
            "at": "TIME",
            "signature": "BLOB",
            "interpretations": "VARCHAR[]",
            "components": "DECIMAL(38,18)[]",
            "component_codes": "VARCHAR[]",
            "position": "VARCHAR",
        },
    )
    answer = connection.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE final), sum(value)::VARCHAR,
                   max(epoch_us(issued)), sum(len(components)),
                   list(TRY_CAST(effective AS DATE) ORDER BY id)::VARCHAR,
                   max(json_extract_string(quantity, '$.unit'))
            FROM {source}"""
    ).fetchone()
    expect(
        "duckdb query",
        answer,
        (3, 2, "1.500000000000000000", 1584264600123456, 2, "[NULL, 2020-03-15, NULL]", "mmol/L"),
    )
    return f"duckdb {duckdb.__version__}: SELECT over the file, types and values as written"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    for check in (check_pyarrow, check_pandas, check_duckdb):
        print(check(path), flush=True)
    # pyarrow's thread pools sometimes abort the interpreter's shutdown ("terminate called
    # without an active exception") after every check passed: leave without it.
    os._exit(0)


if __name__ == "__main__":
    main()
