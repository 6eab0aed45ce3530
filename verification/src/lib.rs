//! `strata-verification`: checks of Strata's claims beyond unit tests (publish = false).
//!
//! - [`model`]: a reference model of snapshot isolation, driven against the engine by the
//!   proptest state machine in `tests/model_si.rs`.
//! - [`history`]: the history recorder types and the isolation-anomaly checker, run over real
//!   threads by `tests/history_si.rs`.
//! - [`merge_history`]: a recorder and checker for merges (adds, puts and reads of a few integer
//!   keys on real threads), run by `tests/history_merges.rs`.
//! - [`bank`]: the bank-with-journal workload and checker of the process kill test
//!   (`tests/kill.rs`, child binary `src/bin/kill-child.rs`).
//! - [`list_append`]: the list-append workload (lost updates, aborted writes, non-prefix reads)
//!   on the engine API or SQL, run by `tests/list_append.rs` and the `list-append` binary.
//! - `tests/loom_protocol.rs`: loom models of the commit protocol with canaries.
//!
//! What each layer proves and how to run it longer: `docs/design/verification.md`.
#![forbid(unsafe_code)]

pub mod bank;
pub mod history;
#[cfg(not(any(loom, shuttle)))]
pub mod list_append;
pub mod merge_history;
pub mod model;
