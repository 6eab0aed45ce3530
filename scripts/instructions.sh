#!/usr/bin/env bash
# Instructions per committed op, by engine and workload, at one thread: the cost of a txn that
# does not drift with the machine's load (valgrind's callgrind counts instructions executed, not
# time). Each (engine, workload) runs twice under callgrind with a fixed op count (`strata bench
# --ops`), and the difference of the two totals over the difference of the op counts cancels the
# setup (preload, thread start). Instructions are not time: a fence or a cache miss is one
# instruction and many cycles, so this measures work removed, not contention.
#
# Usage: scripts/instructions.sh [BIN] (default: target/bench/release/strata, built with
#   cargo build --release -p strata-cli --target-dir target/bench)
#   ENGINES=strata,baseline,map WORKLOADS=counters-1k,counters-hot OPS=20000
#   EXTRA="--path DIR --durability buffered" (more `strata bench` arguments: on disk, for one;
#   then every thread of the process is counted, the log's included)
set -euo pipefail
bin=${1:-target/bench/release/strata}
engines=${ENGINES:-strata,strata-merge,baseline,map}
workloads=${WORKLOADS:-counters-1k,counters-hot,counters-1m}
ops=${OPS:-20000}
small=$((ops / 4))
command -v valgrind > /dev/null || { echo "valgrind is not installed" >&2; exit 2; }
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 2; }
total() { # engine workload ops -> instructions executed by the whole process
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" bench --engine "$1" \
        --workload "$2" --threads 1 --ops "$3" ${EXTRA:-} 2>&1 >/dev/null \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "| workload | engine | instructions per op | of map |"
echo "|---|---|---:|---:|"
for w in ${workloads//,/ }; do
    declare -A per=()
    for e in ${engines//,/ }; do
        big=$(total "$e" "$w" "$ops")
        little=$(total "$e" "$w" "$small")
        per[$e]=$(( (big - little) / (ops - small) ))
    done
    for e in ${engines//,/ }; do
        if [ -n "${per[map]:-}" ]; then
            ratio=$(python3 -c "print(f'{${per[$e]} / ${per[map]}:.1f}x')")
        else
            ratio="-"
        fi
        echo "| $w | $e | ${per[$e]} | $ratio |"
    done
    unset per
done
