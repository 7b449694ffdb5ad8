//! The pool's error type.

use std::sync::Arc;

/// What went wrong with a task or with the pool. `Clone`, because one failure (a worker
/// that died, a terminated pool) is the answer of every task it took down.
///
/// The first five variants are a *task's* outcome and leave the pool serving; the
/// others concern the pool itself.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task's function panicked; `message` is the panic's message and location.
    /// The worker caught it and keeps serving (Python re-raises the exception in `get`).
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic message, then `(at file:line)`.
        message: String,
    },
    /// The worker process running this task died (SIGKILL, abort, `exit`) before it
    /// returned the result. The pool replaced the worker; later tasks run normally.
    /// With a chunk size above 1, every task of the chunk in progress gets this error.
    #[error("worker process {pid} died while running this task ({cause}); the pool replaced it")]
    WorkerDied {
        /// Pid of the worker that died.
        pid: u32,
        /// How it ended, e.g. `killed by SIGKILL`.
        cause: String,
    },
    /// The task failed in the worker outside the function: its arguments did not
    /// decode there, its result did not encode, or its function token was refused.
    #[error("task failed in the worker: {message}")]
    Failed {
        /// What the worker reported.
        message: String,
    },
    /// The result arrived but did not decode as the expected type.
    #[error("could not decode a result as {type_name}: {reason}")]
    Decode {
        /// The expected type.
        type_name: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The pool was terminated (or dropped) before this task finished.
    #[error("the pool was terminated before this task finished")]
    Terminated,
    /// A `_timeout` call ran out of time; the task is still pending and can be waited
    /// for again.
    #[error("timed out")]
    Timeout,
    /// The pool was closed: it takes no new tasks.
    #[error("the pool is closed: it takes no new tasks (close() or terminate() was called)")]
    Closed,
    /// `join` was called before `close` or `terminate` (Python raises `ValueError`).
    #[error("join() needs close() or terminate() first: the pool is still running")]
    StillRunning,
    /// The result was already taken by an earlier `get`.
    #[error("the result was already taken by an earlier get")]
    Taken,
    /// An argument could not be encoded.
    #[error("could not encode {type_name}: {reason}")]
    Encode {
        /// The argument type.
        type_name: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// The initializer failed in a worker (panicked, or its argument did not decode).
    /// The pool stops, instead of restarting workers forever as Python's does.
    #[error("the pool's initializer failed in a worker: {message}")]
    InitializerFailed {
        /// The panic message or reason.
        message: String,
    },
    /// A worker process could not be started.
    #[error("could not start a worker process: {0}")]
    Spawn(#[source] Arc<shmkit_process::ProcessError>),
    /// The pool's task or result transport failed (e.g. a corrupted ring).
    #[error("pool transport: {0}")]
    Ring(#[source] Arc<shmkit_ring::Error>),
    /// A shared-memory segment of the pool could not be created or opened.
    #[error("pool segment: {0}")]
    Segment(#[source] Arc<shmkit_segment::Error>),
    /// An invalid builder setting.
    #[error("invalid pool configuration: {0}")]
    Config(String),
}

impl From<shmkit_process::ProcessError> for Error {
    fn from(e: shmkit_process::ProcessError) -> Self {
        Error::Spawn(Arc::new(e))
    }
}

impl From<shmkit_ring::Error> for Error {
    fn from(e: shmkit_ring::Error) -> Self {
        Error::Ring(Arc::new(e))
    }
}

impl From<shmkit_segment::Error> for Error {
    fn from(e: shmkit_segment::Error) -> Self {
        Error::Segment(Arc::new(e))
    }
}

impl Error {
    /// Whether this is a task's own outcome ([`Panicked`](Self::Panicked),
    /// [`WorkerDied`](Self::WorkerDied), [`Failed`](Self::Failed),
    /// [`Decode`](Self::Decode)), after which the pool keeps serving.
    pub fn is_task_error(&self) -> bool {
        matches!(
            self,
            Error::Panicked { .. }
                | Error::WorkerDied { .. }
                | Error::Failed { .. }
                | Error::Decode { .. }
        )
    }
}

/// `Result` with the pool's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
