//! The process-wide state of this crate: what a child is told through its environment,
//! and the statics and thread-locals that the child entry, the panic hook and
//! `current_process` share.

use std::sync::OnceLock;

use crate::primitive::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32};

/// A Spawn child: the number of its inherited control socket. Its presence is what
/// makes [`init`](crate::init) run the child role.
pub(crate) const CHILD_FD_ENV: &str = "SHMKIT_PROCESS_FD";
/// A Spawn child: its name (`Process-3`, `PoolWorker-2`).
pub(crate) const CHILD_NAME_ENV: &str = "SHMKIT_PROCESS_NAME";
/// Test-binary children only: the descriptor of the real stdout (fd 1 is /dev/null
/// until the child entry runs, so libtest's own lines stay out of the parent's output).
pub(crate) const CHILD_STDOUT_ENV: &str = "SHMKIT_PROCESS_STDOUT";

/// Set by [`init`](crate::init): this binary can act as a Spawn child.
pub(crate) static INITIALIZED: AtomicBool = AtomicBool::new(false);
/// `module_path!()` of the `test_support!()` of this test binary, if any.
pub(crate) static TEST_ENTRY: OnceLock<&'static str> = OnceLock::new();
/// This process's name once it runs as a child (a leaked `String`; null: `MainProcess`).
/// A pointer rather than a `OnceLock`, so a Fork child of a child can set its own.
pub(crate) static CURRENT_NAME: AtomicPtr<String> = AtomicPtr::new(std::ptr::null_mut());
/// The `N` of the next default name `Process-N`.
pub(crate) static NEXT_ID: AtomicU32 = AtomicU32::new(1);
/// The child's control socket, for the panic hook (-1 outside a child).
pub(crate) static CHILD_SOCKET: AtomicI32 = AtomicI32::new(-1);
/// Whether the function's panic was already sent to the parent (one report per child).
pub(crate) static PANIC_SENT: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// True on the thread of a child that runs the requested function.
    pub(crate) static RUNS_THE_FUNCTION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// True while this thread runs inside [`catch_panic`](crate::catch_panic).
    pub(crate) static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The message (with location) of the last panic [`catch_panic`](crate::catch_panic) caught here.
    pub(crate) static CAUGHT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}
