//! Await shmkit's waits from tokio: a [`Queue`](shmkit_ring::Queue)'s `get` and `put`,
//! a [`Connection`](shmkit_ring::Connection)'s `recv` and `send`, the SPSC ring's
//! `recv`, zero-copy `read` and `send`, [`Event`](shmkit_sync::Event)'s `wait`,
//! [`Semaphore`](shmkit_sync::Semaphore)'s `acquire`, [`Barrier`](shmkit_sync::Barrier)'s `wait`,
//! [`Process`](shmkit_process::Process)'s `join`, and the pool's results — without
//! parking a thread per wait. The blocking API stays as it is; a program need not be
//! async to share queues with one that is.
//!
//! Wrap a handle in [`Async`] and await the blocking names:
//!
//! ```no_run
//! use shmkit_async::Async;
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let q = Async::new(shmkit_ring::Queue::<String>::new()?);
//! q.put(&"hello".to_string()).await?;
//! let item = tokio::time::timeout(std::time::Duration::from_secs(1), q.get()).await??;
//! assert_eq!(item, "hello");
//! # Ok(()) }
//! ```
//!
//! # How a wait works
//!
//! A poll first tries the non-blocking operation (`try_get`, ...): an item that is there
//! is returned with no syscall and no thread hop. Only when it must wait does the future
//! run the sleeper's half of the word's protocol (raise the waiter flag, re-check) and
//! register `(word, value, waker)` with the process's waker thread, which sleeps in
//! `futex_waitv` on every word its futures wait for and wakes their tasks when a word
//! changes (see the `reactor` module and `docs/async.md`). A producer in any process
//! wakes anyone only if a waiter is announced, as for the blocking API.
//!
//! # Cancel safety
//!
//! Every future here is cancel-safe: dropped at any point (`tokio::select!`,
//! `tokio::time::timeout`), it has taken nothing (a message is taken only by the poll
//! that returns it) and leaves nothing behind (its registration is removed; a waiter
//! count it raised is lowered). The waiter flag of a ring may stay raised: it costs the
//! next producer one spurious wake-up, never a lost message. The exception is a
//! barrier: an arrival cannot be taken back, so a dropped `Barrier` wait breaks the
//! barrier, as a blocking `wait_timeout` that runs out does.
//!
//! # A dead peer
//!
//! A dead peer wakes nobody, so while anything waits the waker thread wakes each waiting
//! task once per [`SLICE`] (100 ms) to ask the kernel whether its peer lives: an awaited
//! `get`/`recv` on a ring whose other side died returns
//! [`Disconnected`](shmkit_ring::Error::Disconnected) within about two slices; `join`
//! returns the child's death as soon as it happens (the pidfd turns readable).
//!
//! # Runtimes
//!
//! Both tokio runtimes work (current-thread and multi-thread). `join` needs the runtime's
//! I/O driver (`enable_io` or `enable_all`); the other waits need no driver at all (they
//! are woken by the waker thread through their `Waker`s).
#![doc(html_root_url = "https://docs.rs/shmkit-async/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(shmkit_loom))]
mod park;
#[cfg(not(shmkit_loom))]
mod pool;
mod primitive;
#[cfg(not(shmkit_loom))]
mod process;
#[cfg(not(shmkit_loom))]
mod reactor;
#[cfg(not(shmkit_loom))]
mod ring;
#[cfg(not(shmkit_loom))]
mod sync;
#[cfg(not(shmkit_loom))]
mod sys;
mod wrapper;

#[cfg(not(shmkit_loom))]
pub use reactor::SLICE;
#[doc(hidden)]
#[cfg(not(shmkit_loom))]
pub use reactor::waker_threads;
pub use wrapper::Async;

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
