//! The awaited form of [`Process::join`]: the child's pidfd turns readable when it exits;
//! tokio's `AsyncFd` watches it, so no waker thread is involved.

use crate::wrapper::Async;
use serde::de::DeserializeOwned;
use shmkit_process::{Process, ProcessError};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

impl<R: DeserializeOwned> Async<Process<R>> {
    /// Wait for the child to finish and return its result, like [`Process::join`]; a
    /// child that died returns its death ([`ProcessError::Signaled`], ...). Needs a
    /// tokio runtime with I/O enabled (`enable_io`, or `enable_all`).
    ///
    /// Takes `&mut self` so that it is cancel-safe: a dropped `join` leaves the process
    /// joinable (a second successful join returns [`ProcessError::AlreadyJoined`]).
    pub async fn join(&mut self) -> Result<R, ProcessError> {
        let io = |source| ProcessError::Io {
            op: "watch the pidfd",
            source,
        };
        {
            // A duplicate the AsyncFd owns: it stays open for as long as the AsyncFd
            // lives, whatever happens to this future or the `Process`.
            let pidfd = self.inner.pidfd().try_clone_to_owned().map_err(io)?;
            // SAFETY: `pidfd` is a valid open descriptor, owned by the `AsyncFd` (it is
            // closed only when the `AsyncFd` is dropped), and `OwnedFd::as_raw_fd`
            // always returns that same descriptor.
            let fd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
                .map_err(|e| io(e.into()))?;
            // Readable once the child has exited; the guard is dropped at once (the
            // readiness is final: an exited child stays exited).
            let _ready = fd.readable().await.map_err(io)?;
        }
        loop {
            // The child has exited, so its reply is queued: this does not wait.
            match self.inner.join_timeout(Duration::ZERO) {
                Err(ProcessError::Timeout { .. }) => tokio::task::yield_now().await,
                r => return r,
            }
        }
    }
}
