"""Every indicator computed over HTTP (`Measure/ID/$evaluate-measure`) REPEAT times for one
month, one request at a time; the latency of each, measured here, as p50 and p99 per
indicator and over all requests.

    indicator_latency.py BASE TOKEN REPEAT INDICATOR...
"""
import json
import statistics
import sys
import time
import urllib.request

base, token, repeat, indicators = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
every = []
print("| indicator | requests | p50 ms | p99 ms | initial population |")
print("|---|---|---|---|---|")
for indicator in indicators:
    times = []
    for _ in range(repeat):
        url = f"{base}/Measure/{indicator}/$evaluate-measure?periodStart=2026-03&periodEnd=2026-03"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request) as answer:
            report = json.load(answer)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    every += times
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    count = report["group"][0]["population"][0]["count"]
    print(f"| `{indicator}` | {repeat} | {statistics.median(times):.0f} | {p99:.0f} | {count} |")
every.sort()
p99 = every[min(len(every) - 1, int(len(every) * 0.99))]
print(f"| all | {len(every)} | {statistics.median(every):.0f} | {p99:.0f} | |")
