//! Helpers shared by the engine's integration tests.

use strata::{Database, Options, StoreKind};

/// One fresh database per store kind: every behaviour test runs on both.
pub fn dbs() -> Vec<Database> {
    [StoreKind::LockFree, StoreKind::Baseline]
        .into_iter()
        .map(|s| Database::with_options(Options::default().store(s)))
        .collect()
}
