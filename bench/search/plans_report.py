#!/usr/bin/env python3
"""Sets the plan-regression results (search-bench plans, one JSON line per shape, page size and
store) side by side: for each size of the sample, each shape and page size, the first and deep
page on every store, and PostgreSQL's over SQLite's; then the worst ratios and every page of
1,000 over 100 ms, and every answer that differs from SQLite's (`difference`).

    plans_report.py results.jsonl [--goal-ratio 5] [--goal-ms 100]
"""
import json
import sys
from collections import defaultdict

GOAL_RATIO = 5.0
GOAL_MS = 100.0


def whole(cell):
    """Whether the first page held every match (there was no next page)."""
    return cell.get("deep_ms") is None


def difference(base, other):
    """How `other` answered differently from `base`, or None. The stores number rows in the
    order a load wrote them, which a parallel load does not keep, so pages of one query hold
    the same matches in another order: a whole answer is compared as a set, a paged one by its
    pages' sizes, how many pages were walked and its total. (Included resources follow the
    page's matches, so a paged `_include` may differ in size with no store wrong.)"""
    def ids(cell, page):
        return (cell.get(page) or {}).get("ids") or []

    if whole(base) != whole(other):
        return "one store answered on one page, the other needed more"
    if base["first"].get("total") != other["first"].get("total"):
        return f'total {other["first"].get("total")} against {base["first"].get("total")}'
    if whole(base):
        want, got = set(ids(base, "first")), set(ids(other, "first"))
        if want != got:
            return f"{len(got - want)} ids not in SQLite's answer, {len(want - got)} missing"
        return None
    sizes = [(len(ids(c, "first")), c.get("deep_page"), len(ids(c, "deep"))) for c in (base, other)]
    if sizes[0] != sizes[1]:
        return f"(first page, deep page number, its size) {sizes[1]} against {sizes[0]}"
    return None


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    rows = [json.loads(line) for line in open(args[0]) if line.strip()]
    # label is "<store> <n>x"
    by = defaultdict(dict)
    stores, sizes, order = [], [], []
    for r in rows:
        store, size = r["label"].rsplit(" ", 1)
        if store not in stores:
            stores.append(store)
        if size not in sizes:
            sizes.append(size)
        key = (r["shape"], r["count"])
        if key not in order:
            order.append(key)
        by[(size, key)][store] = r
    pg = [s for s in stores if s != "sqlite"]
    worst = []
    slow_pages = []
    errors = []
    differing = []
    compared = [0, 0]
    for size in sizes:
        print(f"\n### {size}\n")
        head = "| shape | _count | entries |" + "".join(f" {s} first / deep ms |" for s in stores)
        head += "".join(f" {s} / sqlite |" for s in pg)
        print(head)
        print("|" + "---|" * (3 + len(stores) + len(pg)))
        for key in order:
            cells = by.get((size, key))
            if not cells:
                continue
            shape, count = key
            entries = next((c.get("entries") for c in cells.values() if "entries" in c), "")
            line = f"| {shape} | {count} | {entries} |"
            for s in stores:
                c = cells.get(s)
                if c is None:
                    line += " |"
                elif "error" in c:
                    line += " error |"
                    errors.append((size, s, shape, count, c["error"]))
                else:
                    deep = "-" if c["deep_ms"] is None else f'{c["deep_ms"]:.2f} (p{c["deep_page"]})'
                    line += f' {c["first_ms"]:.2f} / {deep} |'
                    for page in ("first", "deep"):
                        ms = c[f"{page}_ms"]
                        if count == 1000 and ms is not None and ms > GOAL_MS:
                            slow_pages.append((ms, size, s, shape, page))
            base = cells.get("sqlite")
            for s in pg:
                c = cells.get(s)
                if base and c and "first" in base and "first" in c:
                    compared[0 if whole(base) and whole(c) else 1] += 1
                    why = difference(base, c)
                    if why:
                        differing.append((size, s, shape, count, why))
            for s in pg:
                c = cells.get(s)
                if not base or not c or "error" in c or "error" in base:
                    line += " |"
                    continue
                ratios = []
                for page in ("first", "deep"):
                    if c[f"{page}_ms"] is not None and base[f"{page}_ms"]:
                        ratio = c[f"{page}_ms"] / base[f"{page}_ms"]
                        ratios.append(ratio)
                        worst.append((ratio, size, s, shape, count, page, c[f"{page}_ms"], base[f"{page}_ms"]))
                line += " " + " / ".join(f"{r:.1f}" for r in ratios) + " |"
            print(line)
    worst.sort(reverse=True)
    print(f"\n### Worst PostgreSQL / SQLite ratios (goal: at most {GOAL_RATIO:g}x)\n")
    print("| ratio | size | store | shape | _count | page | PostgreSQL ms | SQLite ms |")
    print("|---|---|---|---|---|---|---|---|")
    for ratio, size, s, shape, count, page, p, q in worst[:15]:
        print(f"| {ratio:.1f} | {size} | {s} | {shape} | {count} | {page} | {p:.2f} | {q:.2f} |")
    over = [w for w in worst if w[0] > GOAL_RATIO]
    over_1ms = [w for w in over if w[6] >= 1.0]
    print(f"\n{len(over)} of {len(worst)} pages over {GOAL_RATIO:g}x; "
          f"{len(over_1ms)} of them taking 1 ms or more on PostgreSQL.")
    slow_pages.sort(reverse=True)
    print(f"\n### Pages of 1,000 over {GOAL_MS:g} ms\n")
    if not slow_pages:
        print("None.")
    for ms, size, s, shape, page in slow_pages:
        print(f"- {ms:.1f} ms: {shape}, {page} page, {s} {size}")
    print("\n### Answers that differ from SQLite's\n")
    print(f"Compared: {compared[0]} answers whole on their first page (as sets of ids, and "
          f"their totals), {compared[1]} paged (their pages' sizes, page count and totals). "
          f"{len(differing)} differ.")
    for size, s, shape, count, why in differing:
        print(f"- {s} {size} {shape} _count={count}: {why}")
    if errors:
        print("\n### Errors\n")
        for size, s, shape, count, error in errors:
            print(f"- {s} {size} {shape} _count={count}: {error}")


if __name__ == "__main__":
    main()
