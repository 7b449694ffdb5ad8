//! The crate's one error type: the local `Queue`'s and `Pool`'s shapes, plus what a
//! network adds (a URL that does not parse, a server that is down, a wrong password, a
//! connection lost mid-call, an entry somebody else wrote).

/// Everything that can go wrong with a remote queue or pool. `Clone`, because one
/// failure (a worker that died) is the answer of every task of its chunk.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The URL does not parse (or names a scheme this build does not support, such as
    /// `rediss://` without the `tls` feature). Nothing was contacted.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made: the server is down, refuses, or does not answer in
    /// time.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, password replaced by `***`.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// The server refused the user name or password (`redis://user:password@host`).
    #[error("authentication failed at {url}: {reason}")]
    Auth {
        /// The URL, password replaced by `***`.
        url: String,
        /// The server's message.
        reason: String,
    },
    /// The connection broke during this call. Whether the call took effect is unknown
    /// (a `put` may have stored its item); the next call reconnects.
    #[error("connection to {url} lost during the call ({reason}); the next call reconnects")]
    ConnectionLost {
        /// The URL, password replaced by `***`.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// The server answered with an error (for example `NOPERM` for an ACL user without
    /// the right to a key, or a key of another type).
    #[error("server error at {url} on {key}: {reason}")]
    Server {
        /// The URL, password replaced by `***`.
        url: String,
        /// The key the call was about.
        key: String,
        /// The server's message.
        reason: String,
    },
    /// An entry in a stream is not one this crate wrote (a foreign writer, another item
    /// type, corruption). The entry was moved to the stream's dead-letter stream and
    /// acknowledged, so it does not come back.
    #[error("stream {stream:?}, entry {id}: {what}")]
    Corrupt {
        /// The stream's key.
        stream: String,
        /// The entry id.
        id: String,
        /// What was expected and what was found.
        what: String,
    },
    /// The key exists but belongs to something else (another item type, another kind).
    #[error("{key:?} is not a matching {expected}: found {found}")]
    Foreign {
        /// The key.
        key: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// An invalid name: `[A-Za-z0-9._-]`, 1..=200 bytes.
    #[error("invalid name {name:?}: use 1 to 200 of [A-Za-z0-9._-]")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The queue is at its `maxsize` ([`TrySendError::Full`] as an `Error`; a
    /// `put_many` whose batch does not fit now).
    #[error("full")]
    Full,
    /// Nothing to take ([`TryRecvError::Empty`] as an `Error`).
    #[error("empty")]
    Empty,
    /// A `_timeout` call ran out of time (for a pool result: the task is still pending
    /// and can be waited for again).
    #[error("timed out")]
    Timeout,
    /// This handle was closed; or the pool takes no new tasks.
    #[error("closed")]
    Closed,
    /// `task_done` was called more times than items were put.
    #[error("task_done() called too many times")]
    TaskDoneTooMany,
    /// A value could not be encoded.
    #[error("could not encode {type_name}: {reason}")]
    Encode {
        /// The type.
        type_name: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// A result arrived but did not decode as the expected type.
    #[error("could not decode a result as {type_name}: {reason}")]
    Decode {
        /// The expected type.
        type_name: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The task's function panicked in the worker; the worker keeps serving.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The worker running this task stopped answering for longer than the pool's
    /// `reclaim_after` (killed, host gone, network cut) and the task had no retry left.
    /// A copy of the task is in the pool's dead-letter stream.
    #[error(
        "worker {worker} died while running this task (idle {idle_ms} ms, attempt {attempts}); \
         the task is in the dead-letter stream"
    )]
    WorkerDied {
        /// The worker's consumer name (`host-pid-nonce`).
        worker: String,
        /// How long the task had been without a heartbeat when it was reclaimed.
        idle_ms: u64,
        /// How many times the task was started.
        attempts: u32,
    },
    /// No function of this name is registered in the worker that took the task (or, in
    /// the caller, `f` was never registered). Nothing was called.
    #[error("no function registered under the name {name:?} {where_}")]
    UnknownFunction {
        /// The name (or, for an unregistered `fn` pointer, its type).
        name: String,
        /// `in the worker` or `in this process`.
        where_: &'static str,
    },
    /// The task failed in the worker outside the function (its arguments did not decode
    /// as the registered function's argument type).
    #[error("task failed in the worker: {message}")]
    Failed {
        /// What the worker reported.
        message: String,
    },
    /// The pool handle was terminated ([`Pool::terminate`](crate::Pool::terminate))
    /// before this task was answered.
    #[error("the pool was terminated before this task finished")]
    Terminated,
    /// The result was already taken by an earlier `get`.
    #[error("the result was already taken by an earlier get")]
    Taken,
    /// `join` was called before `close`.
    #[error("join() needs close() first: the pool is still running")]
    StillRunning,
    /// An invalid builder setting.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether this is a task's own outcome ([`Panicked`](Self::Panicked),
    /// [`WorkerDied`](Self::WorkerDied), [`Failed`](Self::Failed),
    /// [`UnknownFunction`](Self::UnknownFunction), [`Decode`](Self::Decode)), after which
    /// the pool keeps serving.
    pub fn is_task_error(&self) -> bool {
        matches!(
            self,
            Error::Panicked { .. }
                | Error::WorkerDied { .. }
                | Error::Failed { .. }
                | Error::UnknownFunction { .. }
                | Error::Decode { .. }
        )
    }

    /// Whether the connection failed (lost, refused, down): retrying later may succeed.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Error::ConnectionLost { .. } | Error::Connect { .. })
    }
}

/// Why [`Queue::try_put`](crate::Queue::try_put) did not put: two cases a caller can
/// match exhaustively, as `shmkit_ring::TrySendError` for the local queues (a Redis
/// queue has no "disconnected": producers and consumers come and go). `Full` carries
/// nothing: `try_put` borrows the item, which is still in the caller's hands. `?` turns
/// it into an [`Error`] ([`Error::Full`] for `Full`).
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// The queue is at its `maxsize` now.
    #[error("full")]
    Full,
    /// The call failed (connection, encoding, a closed handle...).
    #[error(transparent)]
    Failed(#[from] Error),
}

/// Why [`Queue::try_get`](crate::Queue::try_get) took nothing: two cases a caller can
/// match exhaustively, as `shmkit_ring::TryRecvError` for the local queues. `?` turns it
/// into an [`Error`] ([`Error::Empty`] for `Empty`).
#[derive(Debug, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is there now.
    #[error("empty")]
    Empty,
    /// The call failed (connection, an item that does not decode, a closed handle...).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<TrySendError> for Error {
    fn from(e: TrySendError) -> Error {
        match e {
            TrySendError::Full => Error::Full,
            TrySendError::Failed(e) => e,
        }
    }
}

impl From<TryRecvError> for Error {
    fn from(e: TryRecvError) -> Error {
        match e {
            TryRecvError::Empty => Error::Empty,
            TryRecvError::Failed(e) => e,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
