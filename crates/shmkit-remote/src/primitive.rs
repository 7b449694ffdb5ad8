//! The one place atomics come from (the workspace rule that lets loom swap atomics in
//! elsewhere; this crate has no lock-free algorithm to model-check: its atomics are
//! `closed` and `stop` flags).
pub(crate) use core::sync::atomic::{AtomicBool, Ordering};
