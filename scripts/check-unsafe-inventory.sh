#!/usr/bin/env bash
# Keeps docs/UNSAFE.md honest: the per-file counts of `unsafe` blocks, fns and impls in its table
# must match the code, and no file it does not list may contain unsafe at all.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
count() { grep -cE 'unsafe (\{|fn|impl)' "$1" || true; }
while IFS='|' read -r _ file n _; do
    file=$(echo "$file" | xargs); n=$(echo "$n" | xargs)
    [[ "$file" == mvcc/src/*.rs || "$file" == wal/src/*.rs || "$file" == store/src/*.rs \
        || "$file" == cli/src/*.rs ]] || continue
    actual=$(count "$file")
    if [ "$actual" != "$n" ]; then
        echo "docs/UNSAFE.md says $file has $n unsafe sites; the code has $actual" >&2
        status=1
    fi
done < <(grep -E '^\| (mvcc|wal|store|cli)/src/' docs/UNSAFE.md)
for f in $(grep -rlE 'unsafe (\{|fn|impl)' --include='*.rs' mvcc/src store/src engine/src cli/src wal/src sql-frontend/src verification/src || true); do
    if ! grep -qE "^\| $f \|" docs/UNSAFE.md; then
        echo "$f contains unsafe code but is not listed in docs/UNSAFE.md" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "unsafe inventory: ok"
exit $status
