"""Groups PostgreSQL's statement log by statement text and protocol phase: how many times each
ran and the time the server spent on it, most time first.

    statements.py LOG [SINCE]

LOG is the server's log with `log_min_duration_statement = 0` (bench/crud/statements.sh sets it
for its own database); SINCE ("YYYY-MM-DD HH:MM:SS", UTC as the log writes it) skips lines
before it. Texts are cut to 150 characters, so statements sharing that prefix share a line."""
import collections
import re
import sys

LINE = re.compile(r"duration: ([0-9.]+) ms\s+(parse|bind|execute|statement)[^:]*:\s*(.*)")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    since = sys.argv[2] if len(sys.argv) > 2 else ""
    by = collections.defaultdict(lambda: [0, 0.0])
    count, total, executed = 0, 0.0, 0
    with open(sys.argv[1], errors="replace") as log:
        for line in log:
            if since and line[:19] < since:
                continue
            m = LINE.search(line)
            if not m:
                continue
            ms, phase, text = float(m.group(1)), m.group(2), m.group(3)
            entry = by[(phase, text[:150])]
            entry[0] += 1
            entry[1] += ms
            count += 1
            total += ms
            executed += phase in ("execute", "statement")
    print(f"{executed} statements run ({count} phases: parse, bind, execute), {total:.1f} ms in the server")
    for (phase, text), (n, ms) in sorted(by.items(), key=lambda kv: -kv[1][1])[:40]:
        print(f"{n:7d} {ms:9.1f} ms {phase:9s} {text}")


if __name__ == "__main__":
    main()
