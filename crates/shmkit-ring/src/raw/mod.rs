//! The non-blocking cores: `#[repr(C)]` shared layouts and the lock-free algorithms
//! over a plain memory region (a shared-memory segment in production, a heap buffer
//! under loom and Miri). Nothing here blocks, sleeps or knows about processes.
//!
//! Every index and length read from the region is validated before it addresses
//! memory; a value out of range is reported as [`RawError::Corrupted`].

mod copy;
pub mod mpmc;
pub mod packed;
pub mod spsc;

pub(crate) use copy::copy_bytes;

/// Why a non-blocking operation on a raw ring did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawError {
    /// Not enough free space now (the caller may wait and retry).
    Full,
    /// Nothing to read now.
    Empty,
    /// The message can never fit in this ring.
    TooLarge {
        /// Requested message length.
        len: usize,
        /// Largest message this ring can ever hold.
        max: usize,
    },
    /// A value read from the shared region breaks the ring's invariants.
    Corrupted(String),
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawError::Full => f.write_str("ring full"),
            RawError::Empty => f.write_str("ring empty"),
            RawError::TooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the ring's maximum of {max}"
                )
            }
            RawError::Corrupted(what) => write!(f, "ring corrupted: {what}"),
        }
    }
}

impl std::error::Error for RawError {}

/// Round `n` up to a multiple of 8.
#[inline]
pub(crate) const fn align8(n: u64) -> u64 {
    (n + 7) & !7
}
