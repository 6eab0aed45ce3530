#!/usr/bin/env bash
# House rule (STYLE §2): library code takes atomics and locks from its crate's `sync` module, so
# loom can swap them. clippy's `disallowed-types` cannot express "except through the shim" (it
# resolves re-exports), so this check does it textually: no `std::sync` outside `src/sync.rs`
# in the library crates. Tests, benches and the CLI are exempt.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(grep -rn --include='*.rs' -E 'std::sync|parking_lot::' mvcc/src engine/src wal/src store/src \
    | grep -v '/src/sync.rs:' || true)
if [ -n "$bad" ]; then
    echo "std::sync / parking_lot used outside a sync shim:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "sync imports: ok"
