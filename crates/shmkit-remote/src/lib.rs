//! Queue and Pool beyond one machine, over Redis Streams: the same names as shmkit's
//! shared-memory [`Queue`](https://docs.rs/shmkit-ring) and
//! [`Pool`](https://docs.rs/shmkit-pool), for programs that outgrow one host. Like
//! Python's `multiprocessing.managers` queues and Ray's `multiprocessing.Pool`, but
//! over an engine you already run: consumer groups, pending-entry lists and `XCLAIM`
//! give at-least-once delivery and dead-worker reclaim.
//!
//! ```no_run
//! use shmkit_remote::{Pool, Queue};
//!
//! fn square(x: u64) -> u64 { x * x }
//!
//! let q = Queue::<String>::connect("redis://127.0.0.1:6379", "jobs")?;
//! q.put(&"hello".to_owned())?;
//! assert_eq!(q.get()?, "hello");
//!
//! shmkit_remote::register("square", square); // in the caller and in every worker
//! let pool = Pool::connect("redis://127.0.0.1:6379", "demo")?;
//! // elsewhere, any number of times: shmkit_remote::worker("redis://...", "demo")
//! assert_eq!(pool.map(square, 0..4)?, [0, 1, 4, 9]);
//! # Ok::<(), shmkit_remote::Error>(())
//! ```
//!
//! `docs/remote.md` has the deployment, the delivery semantics, durability and security.
#![doc(html_root_url = "https://docs.rs/shmkit-remote/0.1.0/")]
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod error;
mod func;
pub mod inspect;
pub mod keys;
mod link;
mod pool;
mod primitive;
mod queue;
mod wire;
mod worker;

pub use error::{Error, Result, TryRecvError, TrySendError};
pub use func::{register, register_star};
pub use keys::DEFAULT_RECLAIM_AFTER as POOL_RECLAIM_AFTER;
pub use pool::{
    AsyncResult, Builder as PoolBuilder, DEFAULT_RECONNECT_FOR, DeadLetter, IMap, MapResult, Pool,
};
pub use queue::{
    Builder as QueueBuilder, DEFAULT_RECLAIM_AFTER as QUEUE_RECLAIM_AFTER, Lease, Queue,
};
pub use worker::{Worker, worker};

/// The README's example, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
