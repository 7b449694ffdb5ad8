//! Cross-process synchronisation in shared memory: the `Lock`, `RLock`, `Condition`,
//! `Event`, `Semaphore`, `Barrier`, `Value`, `Array` and `Manager().dict()` of Python's
//! `multiprocessing`, each living in a named (or anonymous) segment.
//!
//! ```
//! use shmkit_sync::{Event, Mutex};
//!
//! let name = format!("shmkit-doc-sync-{}", std::process::id());
//! let counter = Mutex::create(&name, 0u64)?;
//! *counter.lock()? += 1;                       // uncontended: two atomics, no syscall
//!
//! let in_another_process = Mutex::<u64>::open(&name)?;
//! assert_eq!(*in_another_process.lock()?, 1);
//!
//! let ready = Event::anonymous()?;             // a child gets ready.clone()
//! ready.set();
//! assert!(ready.wait_timeout(std::time::Duration::from_secs(1)));
//! # Ok::<(), shmkit_sync::Error>(())
//! ```
//!
//! - Blocking is futex-based: spin briefly ([`futex::SpinPolicy`]), then sleep on a
//!   process-shared futex word; a release or `set` makes a syscall only when someone
//!   sleeps. Every blocking call has a `_timeout` form.
//! - Locks are **robust**: a process that dies holding a [`Mutex`], [`RLock`],
//!   [`Value`], [`Array`] or [`Dict`] lock is noticed by the next locker within ~10 ms
//!   (its liveness rests on a kernel-released lock, never on a pid), which gets the lock
//!   with `owner_died()` set and the data intact.
//! - Pass a primitive to a child process as itself: `spawn(f, event.clone())`, and the
//!   child's function takes an `Event` ([`Event::try_clone`] is the clone that reports
//!   errors).
//!   A [`Handle`] is the plain serde value that travels.
//!
//! The layouts and the lock word are described in `docs/sync.md`.
//!
//! # Features
//!
//! - `internals` (off by default): makes public what this crate's own tests and loom
//!   models reach into — the lock core and the event and semaphore states (`raw`), the
//!   dict's fault injection (`dict_faults`) and the `primitive` atomics. **Not covered by semver**: anything it
//!   exposes may change or disappear in any release. The crate enables it for its own
//!   tests through a dev-dependency on itself (the way tokio's `test-util` is meant to
//!   be used).
#![doc(html_root_url = "https://docs.rs/shmkit-sync/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

pub mod append;
mod barrier;
mod condvar;
mod dict;
mod error;
mod event;
pub mod futex;
pub mod inspect;
// Its lock core is public as `raw` under `internals` (below).
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub))]
mod lock;
mod mutex;
#[cfg(feature = "internals")]
pub mod primitive;
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub)]
mod primitive;
mod rlock;
mod semaphore;
mod share;
mod small;
mod value;
pub mod wake;

/// What `Barrier::arrive` returns (feature `internals`, for shmkit-async).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use barrier::Arrival;
pub use barrier::Barrier;
pub use condvar::Condvar;
pub use dict::{Dict, DictBuilder};
pub use error::{Error, Result};
pub use event::Event;
pub use futex::SpinPolicy;
pub use lock::{Handle, MAX_PROCESSES};
pub use mutex::{Mutex, MutexBuilder, MutexGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::Semaphore;
pub use value::{Array, ArrayGuard, AtomicInt, Value};

#[doc(hidden)]
pub use value::AtomicOp;

/// Primitives that can be reopened from a [`Handle`] in another process.
pub trait Open: Sized {
    /// Open the primitive a segment handle refers to.
    fn open_handle(seg: &shmkit_segment::SegmentHandle) -> Result<Self>;
}

/// The lock core and the `Event` and `Semaphore` protocols over plain memory, exposed
/// for the loom models in `tests/loom_*.rs` (feature `internals`, not covered by semver).
#[cfg(feature = "internals")]
pub mod raw {
    pub use crate::event::EventState;
    pub use crate::lock::{Acquired, WAITERS, acquire, release, try_acquire};
    pub use crate::semaphore::SemState;
}

/// Fault injection for the dict's crash-point tests (feature `internals`, not covered by
/// semver).
#[cfg(feature = "internals")]
pub mod dict_faults {
    pub use crate::dict::crash::{CrashPoint, set_crash_hook};
}
