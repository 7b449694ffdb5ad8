//! The one place atomics come from (the workspace rule that lets loom swap atomics in
//! elsewhere; the pool has no lock-free algorithm of its own to model-check).
pub(crate) use core::sync::atomic::{AtomicU64, Ordering};
