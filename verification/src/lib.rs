//! `strata-verification`: reference model, history checker, loom and shuttle models, proptest
//! state machines and crash tests. Issue #3 builds it out; this first increment holds nothing yet
//! beyond the crate, the engine's own invariant tests live in `engine/tests/`.
#![forbid(unsafe_code)]
