//! A pool of worker processes — Python's
//! [`multiprocessing.Pool`](https://docs.python.org/3/library/multiprocessing.html#module-multiprocessing.pool)
//! for Rust, with tasks and results travelling through shared-memory rings.
//!
//! ```
//! use shmkit_pool::Pool;
//! use shmkit_process::StartMethod;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! // Fork needs no `init()`, so this example runs as written, even under rustdoc.
//! let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
//! assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
//!
//! let pending = pool.apply_async(square, 12)?;
//! assert_eq!(pending.get()?, 144);
//!
//! pool.close();
//! pool.join()?;
//! # Ok::<(), shmkit_pool::Error>(())
//! ```
//!
//! With the default start method, [`Spawn`](shmkit_process::StartMethod::Spawn), `main`
//! must begin with `shmkit_process::init()` (or `shmkit::init()`), as for
//! `shmkit_process::spawn`; in `cargo test` binaries put `shmkit_process::test_support!()`
//! in the test file.
//!
//! # What it promises
//! - **No hang when a worker dies.** A worker killed mid-task (SIGKILL, abort, OOM) is
//!   replaced; the task it was running returns [`Error::WorkerDied`], the tasks it had
//!   not started run elsewhere, and `map`/`join` return. (Python's `Pool.map` hangs
//!   forever here; `ProcessPoolExecutor` breaks the whole pool.)
//! - **A panic is the task's error**, [`Error::Panicked`] with message and location; the
//!   worker keeps serving.
//! - **Every wait has a `_timeout` form**, and dropping the pool kills and reaps every
//!   worker: no zombie, no orphan.
//! - **Nothing left behind, whatever ends the program.** Every segment of a pool (its
//!   rings, its control segment, the blobs of large arguments and results) is anonymous
//!   (a memfd, opened by the other processes through its maker's descriptor), so Ctrl-C
//!   or `kill -9` of the program leaves nothing in `/dev/shm`; the workers die with it
//!   (`PR_SET_PDEATHSIG`).
//!
//! # How it works
//! Each worker has its own pair of SPSC rings (`shmkit_ring::spsc`): tasks in, outcomes
//! out; the pool's collector thread polls the outcome rings and sleeps on a futex
//! doorbell that a worker rings only while the collector sleeps. The pool sends a worker a few chunks ahead ([`Builder::prefetch`]: up to 16 while chunks are
//! quick, 2 while they are slow), so a worker rarely waits for the pool, and it knows
//! exactly which chunks each worker holds. A worker writes the id of the chunk it
//! starts into a control segment; when it dies, that chunk fails with `WorkerDied` and
//! the chunks it never started are sent to another worker. Inputs or outcomes above
//! 256 KiB travel in an anonymous segment of their own, so a MiB argument never clogs a
//! ring; a worker holds its result blob until the pool has opened it. Arguments and
//! results that are fixed-width numbers (`u8`..`u128`, `i8`..`i128`, `usize`, `isize`,
//! `f32`, `f64`) travel as their little-endian bytes, everything else as postcard: the
//! pool and its workers are one binary, so they agree on the types (which is why
//! argument and result types are `'static`: they are compared at run time). A task
//! names its function by offset in the binary, signed with a key the pool gives its
//! workers outside shared memory, so garbage in a ring cannot make a worker jump
//! anywhere. `docs/architecture.md` has the picture.
//!
//! # Large maps under glibc
//! While a `map` runs, the calling process holds its inputs' encoding and the result
//! slots, which are the `Vec` the `map` returns: for 200 000 `u64`s, about 3.2 MB.
//! The items are encoded as they come (collected first only when the default chunk
//! size is asked for and the iterator cannot say how many it holds). Blocks of
//! megabytes are where glibc's allocator may hand memory back to the kernel between
//! two maps, so that each map faults its memory in afresh: when a `map` also held the
//! collected items and a second copy of its results (8 MB), that made a 200 000-task
//! `map` take 4.3-5.0 ms instead of 1.8-2.1 ms in some runs, with a million page
//! faults (docs/benchmarks.md, "Issue 17, sixth pass" and "seventh pass"). A program
//! that maps much larger inputs and still sees this can start with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824`,
//! which keeps the blocks.
#![doc(html_root_url = "https://docs.rs/shmkit-pool/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod builder;
mod chunk;
mod collector;
mod error;
mod func;
mod inbox;
mod job;
mod pool;
mod primitive;
mod schedule;
mod slots;
mod value;
mod wire;
mod worker;

pub use builder::Builder;
pub use error::{Error, Result};
pub use job::{AsyncResult, IMap, MapResult};
pub use pool::Pool;
pub use shmkit_sync::MAX_PROCESSES;
