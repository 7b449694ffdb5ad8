//! shmkit: Python's `multiprocessing` for Rust, over named shared memory and lock-free
//! ring buffers.
//!
//! This facade re-exports the workspace's crates, each usable on its own:
//!
//! | module | crate | Python counterpart |
//! |---|---|---|
//! | [`segment`] | `shmkit-segment` | `multiprocessing.shared_memory.SharedMemory` |
//! | [`process`] | `shmkit-process` | `multiprocessing.Process`, `cpu_count`, `current_process` |
//! | [`sync`] | `shmkit-sync` | `Lock`, `RLock`, `Condition`, `Event`, `Semaphore`, `Barrier`, `Value`, `Array`, `Manager().dict()` |
//! | [`ring`] | `shmkit-ring` | `Queue`, `JoinableQueue`, `Pipe` |
//! | [`pool`] | `shmkit-pool` | `Pool` (`map`, `imap`, `apply_async`, ...) |
//! | `remote` (feature `remote`) | `shmkit-remote` | `managers` queues, Ray's `Pool`: `Queue` and `Pool` across hosts over Redis Streams |
//! | `tokio` (feature `tokio`) | `shmkit-async` | (asyncio) every wait above awaited from tokio: `Async<Queue<T>>::get().await`, ... |
//!
//! ```no_run
//! use shmkit::prelude::*;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     shmkit::init(); // first line of main: lets this binary act as a child process
//!     let children = (0..3).map(|i| spawn(square, i)).collect::<Result<Vec<_>, _>>()?;
//!     let squares = children.into_iter().map(|p| p.join()).collect::<Result<Vec<_>, _>>()?;
//!     assert_eq!(squares, [0, 1, 4]);
//!     Ok(())
//! }
//! ```
//! (`no_run`: rustdoc's test harness has no `init()` in its `main`; the same program is
//! `examples/process_basic.rs`.)
#![doc(html_root_url = "https://docs.rs/shmkit/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

pub use shmkit_pool as pool;
pub use shmkit_process as process;
pub use shmkit_ring as ring;
pub use shmkit_segment as segment;
pub use shmkit_sync as sync;

/// Queue and Pool beyond one machine, over Redis Streams (the `shmkit-remote` crate).
/// Behind the `remote` feature: `shmkit = { version = "0.1", features = ["remote"] }`.
#[cfg(feature = "remote")]
pub use shmkit_remote as remote;

/// The waits awaited from tokio: `Async<T>` around a queue, pipe, ring, event, semaphore,
/// process or pool result (the `shmkit-async` crate, `docs/async.md`). Behind the `tokio`
/// feature: `shmkit = { version = "0.1", features = ["tokio"] }`.
#[cfg(feature = "tokio")]
pub use shmkit_async as tokio;

/// Call first thing in `main`: in a child started with [`process::StartMethod::Spawn`]
/// it runs the requested function and exits; in the parent it returns at once.
/// The same as [`shmkit_process::init`].
pub fn init() {
    shmkit_process::init();
}

/// The names most programs need, in one `use shmkit::prelude::*;`: the objects of the
/// Python guides and their errors. Internals (segment kinds, headerless segments, the raw
/// ring cores) stay in their modules.
///
/// Each crate has its own error enum; here they carry the crate's name, so that one
/// `use` brings all of them without a clash:
///
/// | prelude name | the crate's type |
/// |---|---|
/// | [`SegmentError`] | [`segment::Error`] |
/// | [`ProcessError`] | [`process::ProcessError`] |
/// | [`SyncError`] | [`sync::Error`] |
/// | [`RingError`] | [`ring::Error`] |
/// | [`PoolError`] | [`pool::Error`] |
///
/// [`SegmentError`]: prelude::SegmentError
/// [`ProcessError`]: prelude::ProcessError
/// [`SyncError`]: prelude::SyncError
/// [`RingError`]: prelude::RingError
/// [`PoolError`]: prelude::PoolError
pub mod prelude {
    pub use shmkit_pool::{AsyncResult, Error as PoolError, IMap, MapResult, Pool};
    pub use shmkit_process::{
        Process, ProcessError, StartMethod, cpu_count, current_process, spawn,
    };
    pub use shmkit_ring::{Connection, Error as RingError, Pipe, PodQueue, Queue, WaitStrategy};
    pub use shmkit_segment::{Error as SegmentError, Segment, SegmentHandle};
    pub use shmkit_sync::{
        Array, Barrier, Condvar, Dict, Error as SyncError, Event, Handle, Mutex, RLock, Semaphore,
        Value,
    };
}

/// The README of every crate, run as doc tests, so that the example a user of
/// `cargo add shmkit-ring` sees first keeps compiling and passing. (Only under
/// `cfg(doctest)`: the packaged crate never reads these files.)
#[cfg(doctest)]
mod readmes {
    #[doc = include_str!("../README.md")]
    struct Shmkit;
    #[doc = include_str!("../crates/shmkit-segment/README.md")]
    struct Segment;
    #[doc = include_str!("../crates/shmkit-process/README.md")]
    struct Process;
    #[doc = include_str!("../crates/shmkit-sync/README.md")]
    struct Sync;
    #[doc = include_str!("../crates/shmkit-ring/README.md")]
    struct Ring;
    #[doc = include_str!("../crates/shmkit-pool/README.md")]
    struct Pool;
    #[doc = include_str!("../crates/shmkit-cli/README.md")]
    struct Cli;
}
