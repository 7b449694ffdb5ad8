//! The one place atomics come from (the workspace rule that lets loom swap atomics in
//! elsewhere; the launcher has no lock-free algorithm to model-check, so these are
//! always core's).
pub(crate) use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};
