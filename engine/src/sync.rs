//! The engine's synchronisation primitives, from one place (STYLE §2). The engine is not
//! modelled under loom (its kernel, `strata-mvcc`, is), so these are always std/parking_lot.
#![allow(clippy::disallowed_types)]

pub(crate) use parking_lot::{Condvar, Mutex, RwLock};
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
pub(crate) use std::sync::{Arc, OnceLock, Weak};
