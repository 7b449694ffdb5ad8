//! Run a Rust function in a child process — Python's
//! [`multiprocessing.Process`](https://docs.python.org/3/library/multiprocessing.html#the-process-class)
//! for Rust.
//!
//! ```
//! use shmkit_process::{Process, StartMethod};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! // Fork needs no `init()`, so this example runs as written, even under rustdoc.
//! let child = Process::builder()
//!     .name("squarer")
//!     .start_method(StartMethod::Fork)
//!     .spawn(square, 7)?;
//! assert_eq!(child.join()?, 49);
//! # Ok::<(), shmkit_process::ProcessError>(())
//! ```
//!
//! The default start method, [`Spawn`](StartMethod::Spawn), re-executes the program, so
//! `main` must let a child find its function: call [`init`] first thing.
//!
//! ```no_run
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), shmkit_process::ProcessError> {
//!     shmkit_process::init(); // first line of main: this binary may be a child
//!     let child = shmkit_process::spawn(square, 7)?;
//!     assert_eq!(child.join()?, 49);
//!     Ok(())
//! }
//! ```
//! (`no_run`: rustdoc's generated `main` has no `init()`; the same code runs as
//! `examples/process_basic.rs` and in this crate's tests.)
//!
//! - [`spawn`] starts `f(args)` in a child; [`Process::join`] returns its result, or a
//!   [`ProcessError`] saying that it panicked (with the message), was killed by a signal
//!   (named), or exited without a result. `f` is a `fn(A) -> R` — a function or a
//!   non-capturing closure — and `A`, `R` are any serde types.
//! - Start methods as in Python: [`StartMethod::Spawn`] (re-execute this binary; the
//!   default, safe with threads) and [`StartMethod::Fork`] (faster; see its caveats).
//! - Every child is reaped, also when its [`Process`] is dropped without `join`; a child
//!   dies with its parent unless started with [`Builder::daemon`]`(false)`.
//! - Children are ordinary processes: a `Spawn` child's `std::env::args()` are the
//!   parent's (Python's spawn carries `sys.argv` over), and `ps`, `top` and `pgrep` show
//!   it under the program's name — `demo:Process-3` where the kernel's 15 bytes allow
//!   (see [`Builder::name`]).
//! - In `cargo test` binaries, put [`test_support!()`](test_support) in the test file.
//! - [`cpu_count`] and [`current_process`] as in Python.
//!
//! shmkit objects are passed to a child as themselves: a shared one as a clone
//! (`spawn(worker, segment.clone())`, the worker takes a `Segment`), a single-owner role
//! with `transfer()`. Anonymous segments travel with the arguments as descriptors
//! (`SCM_RIGHTS`), so they reach the child even if the parent dropped its own handle
//! meanwhile. That is also the way to share big data without copying it: an argument is
//! encoded and copied once into the child; a segment is mapped.
//!
//! Arguments and results travel on a Unix `SOCK_SEQPACKET` control socket inherited by
//! the child: inline up to 64 KiB, above that in a sealed memfd (passed with
//! `SCM_RIGHTS`) that the receiver maps and decodes in place. Liveness rests on the
//! child's pidfd, never on a bare pid.
#![doc(html_root_url = "https://docs.rs/shmkit-process/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod builder;
mod child;
mod current;
mod error;
mod function;
mod launcher;
mod panic;
mod primitive;
mod process;
mod state;
mod sys;
mod test_support;
mod wire;

pub use builder::{Builder, StartMethod, spawn};
pub use child::init;
pub use current::{CurrentProcess, cpu_count, current_process};
pub use error::ProcessError;
pub use panic::catch_panic;
pub use process::Process;
pub use sys::{ExitStatus, signal_name};
#[doc(hidden)]
pub use test_support::__private;
