#!/usr/bin/env python3
"""Where two servers' instructions per request differ, function by function.

    python3 bench/cgdiff.py A.out B.out [--requests N] [--top K]

A.out and B.out are callgrind dumps of N requests each (`CG_KEEP=DIR bash bench/ir.sh ...`
keeps them; N is ir.sh's N2, 10,000 by default). Prints each function's exclusive instructions
per request in A and in B and the difference, largest first. Code inlined into a function
counts as that function's (callgrind names inlined lines after the file they come from; this
groups them by function), so a change of inlining shows as instructions moving between
functions: read the total, then the rows.
"""

import argparse
import collections
import re
import subprocess

# `  1,234,567 (0.41%)  file:function [object]`, as callgrind_annotate prints a function row.
ROW = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.+?)(?:\s+\[[^\]]*\])?$")
HASH = re.compile(r"::h[0-9a-f]{16}")


def exclusive(path):
    """Exclusive instructions per function, summed over the files its lines come from, and
    the program's total."""
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--inclusive=no", "--threshold=100", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    costs, total = collections.Counter(), None
    for line in out.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        cost = int(m.group(1).replace(",", ""))
        if m.group(2) == "PROGRAM TOTALS":
            total = cost
            continue
        # The thread's entry frames are shown with the whole program's cost: not their own.
        if ":" not in m.group(2) or (total and cost > 0.99 * total):
            continue
        location = m.group(2)
        name = location if location.startswith("???") else location.split(":", 1)[1]
        costs[HASH.sub("", name)] += cost
    return costs, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    (a, total_a), (b, total_b), n = exclusive(args.a), exclusive(args.b), args.requests
    print(f"total: A {total_a / n:,.0f}  B {total_b / n:,.0f}  "
          f"B-A {(total_b - total_a) / n:+,.0f} instructions/request")
    print(f"{'B-A':>7} {'A':>8} {'B':>8}  function")
    rows = sorted(set(a) | set(b), key=lambda k: -abs(b[k] - a[k]))
    for name in rows[: args.top]:
        diff = (b[name] - a[name]) / n
        if abs(diff) < 2:
            break
        print(f"{diff:+7.0f} {a[name] / n:8.0f} {b[name] / n:8.0f}  {name[:140]}")


if __name__ == "__main__":
    main()
