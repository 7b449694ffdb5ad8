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
//! - [`raw`]: the non-blocking cores over a plain memory region — the SPSC byte ring
//!   ([`raw::spsc`]) and the MPMC slot queue with its dead-producer unblocker
//!   ([`raw::mpmc`]) — model-checked with loom and run under Miri on heap buffers.
//! - [`spsc`]: a shared-memory SPSC channel with blocking, timed and `try_` forms, zero-copy
//!   grants, batches and disconnection detection.
//! - [`Queue`] (serde items, many producers and consumers, `task_done`/`join`),
//!   [`PodQueue`] (the `Pod` fast path) and [`Pipe`] / [`Connection`].
//!
//! Algorithms, orderings and the disconnection and unblocker arguments are in
//! `docs/ring.md`; the byte layouts in `docs/memory-layout-ring.md`.
#![doc(html_root_url = "https://docs.rs/shmkit-ring/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod endpoint;
mod error;
pub mod inspect;
mod pipe;
pub mod primitive;
mod queue;
pub mod raw;
mod registry;
pub mod spsc;
#[doc(hidden)]
pub mod wait;

pub use error::{Error, Result};
pub use pipe::{Connection, DEFAULT_PIPE_CAPACITY, Pipe};
pub use queue::{DEFAULT_QUEUE_CAPACITY, PodQueue, Queue, QueueBuilder};
pub use registry::MAX_HANDLES;
