//! The one place this crate's atomics come from (the workspace rule, `ci/atomics.sh`).
//! The waker thread's own words are never part of a loom model (the futex words it waits
//! on belong to the rings and the sync primitives), so these are always std's.
#![allow(clippy::disallowed_types)]
#![cfg_attr(shmkit_loom, allow(unused_imports))]

pub(crate) use core::sync::atomic::{AtomicU32, Ordering};
