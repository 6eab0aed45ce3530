#!/usr/bin/env bash
# The thread-scaling run for a many-core machine (issue #15): strata against the baseline, each
# also with increments as merges (and the plain-map limit), on the counter workloads from 1
# thread to the machine's core count, in one run, medians of three. Writes the same JSON as `strata bench --json`, so the prediction in
# docs/benchmarks.md ("Cache-line transfers per txn") can be checked where cores are at hand, and
# the counts themselves (`--lines`, an instrumented build) beside it.
#
#   scripts/thread-scaling.sh [OUT_DIR] [THREADS]
#
# OUT_DIR defaults to ./scaling-<host>-<cores>c; THREADS to 1,2,4,...,cores (and 2x cores, to
# oversubscribe). Nothing else is needed on the machine but a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cores=$(nproc)
out=${1:-scaling-$(hostname)-${cores}c}
threads=${2:-}
if [ -z "$threads" ]; then
    threads=1
    t=2
    while [ "$t" -le "$cores" ]; do threads="$threads,$t"; t=$((t * 2)); done
    [ "$((t / 2))" -eq "$cores" ] || threads="$threads,$cores"
    threads="$threads,$((cores * 2))"
fi
mkdir -p "$out"
workloads=counters-1k,counters-hot,counters-1m
echo "cores: $cores; threads: $threads; results in $out"
cargo run --release -p strata-cli -- bench --engine strata,strata-merge,baseline,baseline-merge,map \
    --workload "$workloads" --threads "$threads" --repeat 3 --json "$out/throughput.json" \
    | tee "$out/throughput.txt"
CARGO_TARGET_DIR=target/lines cargo run --release -p strata-cli --features line-count -- bench \
    --lines --engine strata,baseline --workload "$workloads" --threads "$threads" --duration 0.5 \
    --json "$out/lines.json" | tee "$out/lines.txt"
