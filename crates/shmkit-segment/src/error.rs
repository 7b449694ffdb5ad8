use std::time::Duration;

/// Everything that can go wrong with a segment. Messages name the segment and say what
/// was expected versus what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name is not `[A-Za-z0-9._-]{1,200}`.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `create` of a name that already exists (shmkit never silently opens instead).
    #[error("segment '{name}' already exists")]
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// `open` of a name that does not exist.
    #[error("segment '{name}' not found in /dev/shm")]
    NotFound {
        /// The segment name.
        name: String,
    },
    /// The segment's bytes do not describe a valid shmkit segment.
    #[error("segment '{name}' is corrupted: {what}")]
    Corrupted {
        /// The segment name.
        name: String,
        /// What was wrong.
        what: String,
    },
    /// The segment is valid but holds something other than what was asked for.
    #[error("segment '{name}' holds {found}, you asked for {expected}")]
    Mismatch {
        /// The segment name.
        name: String,
        /// What the caller asked for.
        expected: String,
        /// What the header says.
        found: String,
    },
    /// The creator is alive but did not publish the segment within the open timeout.
    #[error(
        "segment '{name}' was not ready after {waited:?} (its creator is still initialising it)"
    )]
    NotReady {
        /// The segment name.
        name: String,
        /// How long `open` waited.
        waited: Duration,
    },
    /// The file exists but this user may not open it (segments are `0600` by default).
    #[error("permission denied opening segment '{name}'")]
    PermissionDenied {
        /// The segment name.
        name: String,
    },
    /// Not enough room in `/dev/shm` (or in the memfd's memory) for the segment.
    #[error("no space for segment '{name}' of {size} bytes")]
    NoSpace {
        /// The segment name.
        name: String,
        /// The bytes asked for (header included).
        size: u64,
    },
    /// An access outside the payload, or misaligned for its type.
    #[error(
        "segment '{name}': access of {len} bytes at offset {offset} is outside its {size}-byte payload or misaligned"
    )]
    OutOfBounds {
        /// The segment name.
        name: String,
        /// The requested offset.
        offset: usize,
        /// The requested length.
        len: usize,
        /// The payload size.
        size: usize,
    },
    /// The liveness slot is held by another open of the segment.
    #[error("segment '{name}': liveness slot {slot} is held by another participant")]
    SlotBusy {
        /// The segment name.
        name: String,
        /// The slot.
        slot: u32,
    },
    /// Any other operating-system error.
    #[error("segment '{name}': {op} failed: {source}")]
    Io {
        /// The segment name.
        name: String,
        /// The operation that failed.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Map an OS error of operation `op` on segment `name` to the precise variant.
    pub(crate) fn from_io(
        name: &str,
        op: &'static str,
        source: std::io::Error,
        size: u64,
    ) -> Error {
        let name = name.to_owned();
        match source.raw_os_error() {
            Some(libc::EEXIST) => Error::AlreadyExists { name },
            Some(libc::ENOENT) => Error::NotFound { name },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied { name },
            Some(libc::ENOSPC) | Some(libc::ENOMEM) | Some(libc::EFBIG) => {
                Error::NoSpace { name, size }
            }
            Some(libc::ELOOP) => Error::Corrupted {
                name,
                what: "the name is a symbolic link; shmkit does not follow links in /dev/shm"
                    .into(),
            },
            _ => Error::Io { name, op, source },
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
