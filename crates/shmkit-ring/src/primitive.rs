//! The one place atomics come from, so `loom` can swap them in (`--cfg shmkit_loom`): the
//! model-checked code and the shipped code are the same code.
#![allow(clippy::disallowed_types)]

#[cfg(shmkit_loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

#[cfg(not(shmkit_loom))]
pub use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Spin-loop hint (a loom yield under loom, so models of spin loops terminate).
#[inline]
pub fn spin_hint() {
    #[cfg(shmkit_loom)]
    loom::thread::yield_now();
    #[cfg(not(shmkit_loom))]
    core::hint::spin_loop();
}
