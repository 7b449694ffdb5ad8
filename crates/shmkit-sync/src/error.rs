use std::time::Duration;

/// Errors of the sync primitives. Messages name the segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating, opening or mapping the segment failed (includes kind and type
    /// mismatches: opening a `Mutex<u64>` segment as an `Event` says so).
    #[error(transparent)]
    Segment(#[from] shmkit_segment::Error),
    /// A blocking call's timeout passed.
    #[error("'{name}': timed out after {waited:?}")]
    Timeout {
        /// The segment name.
        name: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// More processes opened this primitive than it has process slots.
    #[error("'{name}': all {slots} process slots are taken")]
    TooManyProcesses {
        /// The segment name.
        name: String,
        /// Process slots of this primitive.
        slots: u32,
    },
    /// A party of a barrier died or a wait timed out: the barrier is broken (like
    /// Python's `BrokenBarrierError`). `reset()` makes it usable again.
    #[error("barrier '{name}' is broken: {why}")]
    BrokenBarrier {
        /// The segment name.
        name: String,
        /// What broke it.
        why: String,
    },
    /// A new key for a bounded `Dict` that already holds its maximum of entries.
    #[error("dict '{name}' is full: {needed} entries needed, at most {capacity} allowed")]
    Full {
        /// The segment name.
        name: String,
        /// Entries the dict would hold with the new key.
        needed: usize,
        /// The dict's bound on entries.
        capacity: usize,
    },
    /// A value read from shared memory failed its check.
    #[error("'{name}' is corrupted: {what}")]
    Corrupted {
        /// The segment name.
        name: String,
        /// What was wrong.
        what: String,
    },
    /// A key or value could not be encoded or decoded.
    #[error("'{name}': could not encode or decode {what}: {reason}")]
    Codec {
        /// The segment name.
        name: String,
        /// The type.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// An `Array` index past its end.
    #[error("'{name}': index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// The segment name.
        name: String,
        /// The index asked for.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// `release` of a lock the caller does not hold.
    #[error("'{name}': {what}")]
    NotOwner {
        /// The segment name.
        name: String,
        /// What was attempted.
        what: &'static str,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
