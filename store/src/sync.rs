//! The store's locks and shared pointers, from one place (the house rule for library code: a
//! model checker can swap them here). No loom build of this crate exists yet: the handshake
//! between readers, the root switch and page reuse gets its model when the engine drives it
//! (issue #14).

pub(crate) use parking_lot::{Mutex, RwLock};
pub(crate) use std::sync::{Arc, Weak};
