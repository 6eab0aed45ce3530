#!/usr/bin/env bash
# Issue #13 §3b: the default `strata bench` suite, run N times in a row while BUSY other processes
# spin on the CPUs, must never give up on a txn. Prints, per run, the exit status, whether any
# gate failed, and the most attempts any committed op needed; exits non-zero if any run failed.
#
#   scripts/soak-default-suite.sh [N=10] [BUSY=2] [OUT=target/soak]
#
# Build first: cargo build --release -p strata-cli
set -u
runs=${1:-10}
busy=${2:-2}
out=${3:-target/soak}
bin=target/release/strata
[ -x "$bin" ] || { echo "build first: cargo build --release -p strata-cli" >&2; exit 2; }
mkdir -p "$out"
pids=()
for _ in $(seq 1 "$busy"); do
    ( while :; do :; done ) &
    pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
echo "machine: $(nproc) cores; $busy busy-loop processes; $(date -u +%FT%TZ)"
failed=0
for i in $(seq 1 "$runs"); do
    t0=$(date +%s)
    "$bin" bench --json "$out/run-$i.json" > "$out/run-$i.log" 2>&1
    rc=$?
    t1=$(date +%s)
    summary=$(python3 - "$out/run-$i.json" <<'PY'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no JSON ({e})"); sys.exit()
bad = [f"{r['engine']}/{r['workload']}/{r['threads']}t: {r['gate']}" for r in rows if r['gate'].startswith('FAILED')]
worst = max(rows, key=lambda r: r['attempts_max'])
strata = [r for r in rows if r['engine'] == 'strata']
sw = max(strata, key=lambda r: r['attempts_max']) if strata else None
print(f"{len(rows)} rows, {len(bad)} failed gates; attempts max {worst['attempts_max']} "
      f"({worst['engine']}/{worst['workload']}/{worst['threads']}t)"
      + (f", strata's max {sw['attempts_max']} ({sw['workload']}/{sw['threads']}t)" if sw else ""))
for b in bad: print("  " + b)
PY
)
    echo "run $i: exit $rc, $((t1 - t0)) s; $summary"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
done
echo "runs failed: $failed of $runs"
[ "$failed" -eq 0 ]
