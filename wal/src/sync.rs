//! The WAL's synchronisation primitives, from one place (STYLE §2). Nothing here is modelled
//! under loom; the in-memory faulty disk is the only user so far.
#![allow(clippy::disallowed_types)]

pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
