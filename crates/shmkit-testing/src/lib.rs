//! What the shmkit crates' tests and benches share, in one place instead of a copy per
//! test file (iceoryx2 keeps its test support in a dev-only crate the same way). Never
//! published: the crates take it as a path-only dev-dependency.
//!
//! - [`unique`]: a segment name no other test or test run uses; [`assert_unlinked`],
//!   [`shm_names_starting`], [`assert_none_starting`]: what a test left in `/dev/shm`.
//! - [`faults`]: the fault-injection suites' kill count, replayable random generator,
//!   dying at an exact point, and the checks that a killed child was reaped
//!   (`faults::join_killed`, feature `process`: it names `shmkit_process::Process`, so
//!   shmkit-segment, below shmkit-process, goes without it).
//! - `runtime` (feature `tokio`): tokio runtimes of both flavors, `on_both`, and
//!   `bounded`, a wait bounded by a timeout that also fails a lost wake-up.
//!
//! ```
//! let a = shmkit_testing::unique("doc");
//! let b = shmkit_testing::unique("doc");
//! assert_ne!(a, b);
//! assert!(a.starts_with("shmkit-test-doc-"));
//! shmkit_testing::assert_unlinked(&a);
//! ```

#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

pub mod faults;
mod names;
mod primitive;
#[cfg(feature = "tokio")]
pub mod runtime;

pub use names::{assert_none_starting, assert_unlinked, shm_names_starting, unique};
