#!/usr/bin/env python3
"""Turns `strata bench --json FILE` rows into the comparison table of docs/benchmarks.md.

Usage: scripts/bench-table.py docs/results/counters-2026-11-25.json
"""
import json
import sys

rows = json.load(open(sys.argv[1]))
by = {(r["engine"], r["workload"], r["threads"]): r for r in rows}
workloads = sorted({r["workload"] for r in rows}, key=lambda w: [r["workload"] for r in rows].index(w))
threads = sorted({r["threads"] for r in rows})
print("| workload | threads | strata commits/s | baseline | map limit | strata / baseline "
      "| strata / limit | strata p50 / p99 µs | baseline p50 / p99 µs | gates (strata / baseline) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for w in workloads:
    for t in threads:
        s, b, m = (by.get((e, w, t)) for e in ("strata", "baseline", "map"))
        if not (s and b and m):
            continue
        print(f"| {w} | {t} | {s['commits_per_s']/1e6:.2f}M | {b['commits_per_s']/1e6:.2f}M "
              f"| {m['commits_per_s']/1e6:.2f}M | {s['commits_per_s']/b['commits_per_s']:.2f}x "
              f"| {100*s['commits_per_s']/m['commits_per_s']:.0f}% "
              f"| {s['p50_us']:.2f} / {s['p99_us']:.2f} | {b['p50_us']:.2f} / {b['p99_us']:.2f} "
              f"| {s['gate']} / {b['gate']} |")
