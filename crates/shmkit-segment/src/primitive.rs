//! The one place atomics come from, so `loom` can swap them in (`--cfg shmkit_loom`).
//!
//! Crate-private. [`AtomicU32`] and [`AtomicU64`] are `core`'s, or `loom`'s under
//! `cfg(shmkit_loom)`: the types [`Segment::atomic_u32`](crate::Segment::atomic_u32) and
//! [`Segment::atomic_u64`](crate::Segment::atomic_u64) hand out, which the layers above
//! (sync, ring) name through their own `primitive` modules (the same type whether or not
//! loom is on). Loom cannot model memory
//! shared with another process, so under `cfg(shmkit_loom)` those two methods return an error;
//! loom models check their algorithms over heap buffers instead (DESIGN rule 9).
#![allow(clippy::disallowed_types)]

#[cfg(shmkit_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};

#[cfg(not(shmkit_loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};

/// The hardware's atomics, even under `cfg(shmkit_loom)`: for the header's `ready` word, which
/// this crate shares with other processes and which no loom model can stand in for.
pub(crate) mod os {
    pub(crate) use core::sync::atomic::{AtomicU32, Ordering};
}
