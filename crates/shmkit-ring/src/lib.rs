//! Lock-free ring buffers in shared memory: the heart of shmkit's speed.
//!
//! ```
//! let name = format!("shmkit-doc-ring-{}", std::process::id());
//! let (mut tx, mut rx) = shmkit_ring::spsc::channel(&name, 1 << 16)?;
//! tx.send(b"hello")?;
//! assert_eq!(rx.recv_vec()?, b"hello");
//!
//! // Like multiprocessing.Queue: many producers and consumers, serde-encoded items.
//! let q = shmkit_ring::Queue::<(u32, String)>::create(&format!("{name}-q"), 1 << 16)?;
//! q.put(&(1, "one".into()))?;
//! assert_eq!(q.get()?, (1, "one".to_string()));
//!
//! // Like multiprocessing.Pipe: a duplex pair of connections.
//! let (a, b) = shmkit_ring::Pipe::new()?;
//! a.send(&"ping")?;
//! assert_eq!(b.recv::<String>()?, "ping");
//! # Ok::<(), shmkit_ring::Error>(())
//! ```
//!
//! Layers, bottom up:
//! - `raw`: the non-blocking cores over a plain memory region — the SPSC byte ring
//!   (`raw::spsc`) and the MPMC slot queue with its dead-producer unblocker
//!   (`raw::mpmc`) — model-checked with loom and run under Miri on heap buffers.
//!   Crate-private (see the `internals` feature below).
//! - [`spsc`]: a shared-memory SPSC channel with blocking, timed and `try_` forms, zero-copy
//!   grants, batches and disconnection detection.
//! - [`Queue`] (serde items, many producers and consumers, `task_done`/`join`),
//!   [`PodQueue`] (the `Pod` fast path) and [`Pipe`] / [`Connection`].
//!
//! # Features
//!
//! - `internals` (off by default): makes public what this crate's own tests, loom models,
//!   fuzz targets and benches reach into — the `raw` cores, the `wait` layer, the
//!   `primitive` atomics, the `Queue` item `codec` and the test hooks (`HeapRing::corrupt_tail`,
//!   `PodQueue::claim_and_abandon_for_test`, ...). **Not covered by semver**: anything it
//!   exposes may change or disappear in any release. Do not enable it in a library; the
//!   crate enables it for its own tests through a dev-dependency on itself (the way
//!   tokio's `test-util` is meant to be used).
//!
//! Algorithms, orderings and the disconnection and unblocker arguments are in
//! `docs/ring.md`; the byte layouts in `docs/memory-layout-ring.md`.
#![doc(html_root_url = "https://docs.rs/shmkit-ring/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod endpoint;
mod error;
pub mod inspect;
mod pipe;
#[cfg(feature = "internals")]
pub mod primitive;
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub)]
mod primitive;
mod queue;
#[cfg(feature = "internals")]
pub mod raw;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unreachable_pub)]
mod raw;
mod registry;
pub mod spsc;
#[cfg(feature = "internals")]
pub mod wait;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unreachable_pub)]
mod wait;

#[cfg(feature = "internals")]
pub mod wait_side;

pub use error::{Error, Result, TryRecvError, TrySendError};
pub use pipe::{Connection, DEFAULT_PIPE_CAPACITY, Pipe, PipeBuilder};
/// How a `Queue` item becomes ring bytes and back (for the fuzz targets; `internals`).
#[cfg(feature = "internals")]
pub use queue::codec;
pub use queue::{DEFAULT_QUEUE_CAPACITY, PodQueue, PodQueueBuilder, Queue, QueueBuilder};
pub use registry::MAX_HANDLES;
pub use wait::WaitStrategy;
