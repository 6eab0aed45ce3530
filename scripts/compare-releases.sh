#!/usr/bin/env bash
# Runs the in-memory suite's workloads on two `strata` binaries (e.g. a previous release and this
# one), alternating per workload so both see the same machine, and prints new/old per
# (workload, threads). Issue #14's "in-memory results within 10% of today's".
#
# Usage: scripts/compare-releases.sh OLD_BIN NEW_BIN [OUT_DIR]
#   e.g. git worktree add /tmp/old 950a5d0 && (cd /tmp/old && cargo build --release -p strata-cli \
#          --target-dir /tmp/old-target) && cargo build --release -p strata-cli && \
#        scripts/compare-releases.sh /tmp/old-target/release/strata target/release/strata
set -euo pipefail
old=$1 new=$2 out=${3:-/tmp/compare-releases}
workloads=${WORKLOADS:-counters-1k,counters-hot,counters-1m,ycsb-a,ycsb-c,ycsb-e,bank}
threads=${THREADS:-1,2,4,16}
mkdir -p "$out"
for w in ${workloads//,/ }; do
    for side in old new; do
        bin=$old; [ "$side" = new ] && bin=$new
        "$bin" bench --engine strata --workload "$w" --threads "$threads" --repeat 3 \
            --json "$out/$side-$w.json" > "$out/$side-$w.txt" 2>&1
    done
done
python3 - "$out" "$workloads" <<'PY'
import json, sys
out, workloads = sys.argv[1], sys.argv[2].split(",")
print("| workload | threads | old commits/s | new commits/s | new / old | gates (old / new) |")
print("|---|---:|---:|---:|---:|---|")
for w in workloads:
    old = {r["threads"]: r for r in json.load(open(f"{out}/old-{w}.json"))}
    new = {r["threads"]: r for r in json.load(open(f"{out}/new-{w}.json"))}
    for t in sorted(old):
        o, n = old[t], new.get(t)
        if n is None:
            continue
        print(f"| {w} | {t} | {o['commits_per_s']/1e6:.3f}M | {n['commits_per_s']/1e6:.3f}M "
              f"| {n['commits_per_s']/o['commits_per_s']:.2f} | {o['gate']} / {n['gate']} |")
PY
