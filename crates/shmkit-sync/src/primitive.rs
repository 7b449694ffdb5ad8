//! The one place atomics come from, so `loom` can swap them in (`--cfg loom`): the
//! code loom model-checks is the code that ships.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
