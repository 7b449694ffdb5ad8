//! The crate's one error type.

use crate::raw::RawError;

/// Everything that can go wrong with a ring, queue or pipe.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, opening or mapping the segment failed.
    #[error(transparent)]
    Segment(#[from] shmkit_segment::Error),
    /// A value read from shared memory breaks the ring's invariants (a buggy, old or
    /// hostile peer, or stray writes). The ring is not usable any more.
    #[error("ring {name:?} corrupted: {what}")]
    Corrupted {
        /// Segment name.
        name: String,
        /// What was found.
        what: String,
    },
    /// The message can never fit in this ring.
    #[error("message of {len} bytes exceeds ring {name:?}'s maximum of {max} bytes")]
    TooLarge {
        /// Segment name.
        name: String,
        /// The message length.
        len: usize,
        /// The largest message the ring can hold.
        max: usize,
    },
    /// A `try_` send found no room ([`TrySendError::Full`] as an `Error`).
    #[error("full")]
    Full,
    /// A `try_` receive found nothing ([`TryRecvError::Empty`] as an `Error`).
    #[error("empty")]
    Empty,
    /// A `_timeout` call ran out of time.
    #[error("timed out")]
    Timeout,
    /// The other side is gone (dropped, closed or its process died) and nothing is
    /// left to receive; or, sending, nobody is left to receive.
    #[error("disconnected: the other side is gone")]
    Disconnected,
    /// A role that must be unique (an SPSC producer or consumer, a pipe end) is held by
    /// a live participant already.
    #[error("ring {name:?}: the {role} role is already taken")]
    RoleTaken {
        /// Segment name.
        name: String,
        /// Which role.
        role: &'static str,
    },
    /// This handle was closed ([`Queue::close`](crate::Queue::close),
    /// [`Connection::close`](crate::Connection::close)) or sent to another process.
    #[error("closed")]
    Closed,
    /// Every handle slot of a queue is taken (a slot per handle, and one per handle
    /// serialized for another process and not opened yet).
    #[error(
        "queue {name:?}: all {max} handle slots are in use (one per handle, and one per handle on its way to a child)"
    )]
    TooManyHandles {
        /// Segment name.
        name: String,
        /// Number of slots.
        max: u32,
    },
    /// An invalid capacity was asked for.
    #[error("invalid capacity {capacity}: {why}")]
    InvalidCapacity {
        /// The capacity asked for.
        capacity: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Encoding a value with postcard failed.
    #[error("encode: {0}")]
    Encode(postcard::Error),
    /// Decoding a received message with postcard failed.
    #[error("decode: {0}")]
    Decode(postcard::Error),
    /// An item taken from a queue does not decode as the queue's item type. The item
    /// is no longer in the queue: its bytes are here.
    #[error("queue {name:?}: an item of {} bytes does not decode: {source}", bytes.len())]
    Undecodable {
        /// Segment name.
        name: String,
        /// The item's encoded bytes (postcard), as taken from the queue.
        bytes: Vec<u8>,
        /// Why it did not decode.
        source: postcard::Error,
    },
    /// `task_done` was called more times than items were put.
    #[error("task_done() called too many times")]
    TaskDoneTooMany,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a `try_` send of an SPSC [`Producer`](crate::spsc::Producer), a
/// [`Connection`](crate::Connection), a [`Queue`](crate::Queue) or a
/// [`PodQueue`](crate::PodQueue) did not go through: three cases a caller can match
/// exhaustively (crossbeam's `TrySendError`, with the permanent failures apart). Unlike
/// crossbeam's, `Full` carries nothing: every try form here borrows its message (`&[u8]`,
/// `&T`), which is still in the caller's hands. `?` turns it into an [`Error`].
///
/// ```
/// use shmkit_ring::{Queue, TrySendError};
///
/// let q = Queue::<u32>::builder().maxsize(1).create()?;
/// q.try_put(&1)?;
/// match q.try_put(&2) {
///     Ok(()) => unreachable!("maxsize 1"),
///     Err(TrySendError::Full) => {}                       // try again later
///     Err(TrySendError::Disconnected) => unreachable!("a Queue put never is"),
///     Err(TrySendError::Failed(e)) => return Err(e),      // no retry will help
/// }
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// No room now: a later try may succeed.
    #[error("full")]
    Full,
    /// Nobody is left to receive: the other side is gone.
    #[error("disconnected: the other side is gone")]
    Disconnected,
    /// Waiting will not make this send succeed: the message can never fit
    /// ([`Error::TooLarge`]) or does not encode ([`Error::Encode`]), the handle is closed
    /// or was sent away ([`Error::Closed`]), or the ring is corrupted
    /// ([`Error::Corrupted`]).
    #[error(transparent)]
    Failed(Error),
}

/// Why a `try_` receive of an SPSC [`Consumer`](crate::spsc::Consumer), a
/// [`Connection`](crate::Connection), a [`Queue`](crate::Queue) or a
/// [`PodQueue`](crate::PodQueue) got nothing: three cases a caller can match
/// exhaustively (crossbeam's `TryRecvError`, with the permanent failures apart). `?`
/// turns it into an [`Error`].
#[derive(Debug, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing there now: a later try may find a message.
    #[error("empty")]
    Empty,
    /// The other side is gone and everything it sent has been received.
    #[error("disconnected: the other side is gone")]
    Disconnected,
    /// Waiting will not help: the handle is closed or was sent away ([`Error::Closed`]),
    /// or the ring is corrupted ([`Error::Corrupted`]); or a `Queue` item was taken that
    /// does not decode ([`Error::Undecodable`], its bytes inside; the next item may).
    #[error(transparent)]
    Failed(Error),
}

impl TrySendError {
    /// The crate's error as a try-send's: `Full` and `Disconnected` are themselves,
    /// everything else is permanent.
    pub(crate) fn from_error(e: Error) -> TrySendError {
        match e {
            Error::Full => TrySendError::Full,
            Error::Disconnected => TrySendError::Disconnected,
            other => TrySendError::Failed(other),
        }
    }
}

impl TryRecvError {
    /// The crate's error as a try-receive's: `Empty` and `Disconnected` are themselves,
    /// everything else is permanent.
    pub(crate) fn from_error(e: Error) -> TryRecvError {
        match e {
            Error::Empty => TryRecvError::Empty,
            Error::Disconnected => TryRecvError::Disconnected,
            other => TryRecvError::Failed(other),
        }
    }
}

impl From<TrySendError> for Error {
    fn from(e: TrySendError) -> Error {
        match e {
            TrySendError::Full => Error::Full,
            TrySendError::Disconnected => Error::Disconnected,
            TrySendError::Failed(e) => e,
        }
    }
}

impl From<TryRecvError> for Error {
    fn from(e: TryRecvError) -> Error {
        match e {
            TryRecvError::Empty => Error::Empty,
            TryRecvError::Disconnected => Error::Disconnected,
            TryRecvError::Failed(e) => e,
        }
    }
}

impl Error {
    pub(crate) fn from_raw(name: &str, e: RawError) -> Error {
        match e {
            RawError::Full => Error::Full,
            RawError::Empty => Error::Empty,
            RawError::TooLarge { len, max } => Error::TooLarge {
                name: name.to_owned(),
                len,
                max,
            },
            RawError::Corrupted(what) => Error::Corrupted {
                name: name.to_owned(),
                what,
            },
        }
    }
}
