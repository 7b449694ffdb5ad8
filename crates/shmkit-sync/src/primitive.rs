//! The one place atomics come from, so `loom` can swap them in (`--cfg shmkit_loom`): the
//! code loom model-checks is the code that ships.

#[cfg(shmkit_loom)]
pub use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(shmkit_loom))]
pub use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
