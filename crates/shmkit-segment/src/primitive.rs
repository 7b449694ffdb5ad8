//! The one place atomics come from, so `loom` can swap them in (`--cfg loom`).
#![allow(clippy::disallowed_types)]

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
