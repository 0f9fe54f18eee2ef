"""Whether two runners' NDJSON rows of one view are the same rows: compared as multisets,
numbers as numbers (120 and 120.0 are one value), a column a runner leaves out as null.

    python3 same_rows.py MERIDIAN.ndjson PEER.ndjson

Prints "same N rows", or the counts and a few rows only one side has, and exits 1.
"""
import collections
import json
import sys


def rows(path):
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def key(row, columns):
    def value(v):
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, list):
            return tuple(value(item) for item in v)
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True)

    return tuple(value(row.get(column)) for column in columns)


def main():
    ours, theirs = rows(sys.argv[1]), rows(sys.argv[2])
    columns = sorted({c for row in ours + theirs for c in row})
    a = collections.Counter(key(r, columns) for r in ours)
    b = collections.Counter(key(r, columns) for r in theirs)
    if a == b:
        print(f"same {len(ours)} rows")
        return
    only_ours, only_theirs = a - b, b - a
    print(f"differ: {len(ours)} rows against {len(theirs)}; "
          f"{sum(only_ours.values())} only in the first, {sum(only_theirs.values())} only in the second")
    for label, only in (("first", only_ours), ("second", only_theirs)):
        for row in list(only)[:3]:
            print(f"  only in the {label}: {dict(zip(columns, row))}")
    sys.exit(1)


if __name__ == "__main__":
    main()
