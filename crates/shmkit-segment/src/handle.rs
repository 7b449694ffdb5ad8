//! `SegmentHandle`: a serializable reference that reopens a segment in another process.

use std::os::fd::{AsFd, AsRawFd};

use serde::{Deserialize, Serialize};

use crate::builder::DEFAULT_OPEN_TIMEOUT;
use crate::header::Wanted;
use crate::{Error, Kind, Result, Segment, sys};

/// Where a segment can be reopened from; see [`SegmentHandle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Location {
    Named(String),
    /// An anonymous (memfd) segment, reopened through `/proc/<pid>/fd/<fd>` while that
    /// process lives; `start_time` guards against a reused pid, `file` (device, inode)
    /// against a descriptor number that now refers to another file.
    Proc {
        pid: u32,
        fd: i32,
        start_time: u64,
        file: (u64, u64),
    },
}

/// A serializable reference to a segment: send it to another process (for example as a
/// `shmkit-process` argument) and [`open`](SegmentHandle::open) it there. The open checks
/// the kind and type the handle was made with.
///
/// A named segment's handle holds its name. An anonymous segment's handle holds
/// `/proc/<pid>/fd/<n>` of the process that made the handle, with that process's start
/// time and the file's (device, inode): it opens only while that process lives and
/// keeps the segment open.
///
/// ```
/// let seg = shmkit_segment::Segment::anonymous(16)?;
/// let handle = seg.handle(); // Serialize it into the child's arguments
/// assert!(handle.name().starts_with("anonymous:"));
/// let in_child = handle.open()?; // what the child does
/// assert_eq!(in_child.len(), 16);
/// # Ok::<(), shmkit_segment::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHandle {
    location: Location,
    kind: u32,
    type_hash: u64,
}

impl SegmentHandle {
    /// Open the segment this handle refers to (a new open file description: the opener
    /// gets liveness slots of its own).
    pub fn open(&self) -> Result<Segment> {
        let kind = Kind::from_code(self.kind);
        let seg = match &self.location {
            Location::Named(name) => {
                let mut b = Segment::builder(name);
                if let Some(kind) = kind {
                    b = b.kind(kind);
                }
                b.open()?
            }
            Location::Proc {
                pid,
                fd,
                start_time,
                file,
            } => {
                let label = format!("anonymous:{pid}:{fd}");
                let gone = || Error::NotFound {
                    name: label.clone(),
                };
                if sys::process_start_time(*pid) != Some(*start_time) {
                    return Err(gone());
                }
                let fd = sys::open_proc_fd(&format!("/proc/{pid}/fd/{fd}"))
                    .map_err(|e| Error::from_io(&label, "open", e, 0))?;
                // The descriptor number may have been closed and reused for another file
                // since the handle was made: only the same file will do.
                if sys::identity(fd.as_fd()).ok() != Some(*file) {
                    return Err(gone());
                }
                let wanted = Wanted {
                    kind,
                    fingerprint: None,
                };
                Segment::open_fd(fd, label, wanted, DEFAULT_OPEN_TIMEOUT, false)?
            }
        };
        if self.type_hash != 0 && seg.header.type_hash != self.type_hash {
            return Err(Error::Mismatch {
                name: seg.name.clone(),
                expected: "the type this handle was made for".into(),
                found: seg.header.fingerprint().to_string(),
            });
        }
        Ok(seg)
    }

    /// The segment's name (`anonymous:<pid>:<fd>` for anonymous segments).
    pub fn name(&self) -> String {
        match &self.location {
            Location::Named(n) => n.clone(),
            Location::Proc { pid, fd, .. } => format!("anonymous:{pid}:{fd}"),
        }
    }
}

impl Segment {
    /// A serializable handle that reopens this segment in another process.
    pub fn handle(&self) -> SegmentHandle {
        let location = match &self.location {
            Location::Named(n) => Location::Named(n.clone()),
            Location::Proc { fd, file, .. } if self.creator => Location::Proc {
                pid: std::process::id(),
                fd: *fd,
                start_time: self.header.creator_start,
                file: *file,
            },
            // An opener of an anonymous segment passes on its own descriptor.
            Location::Proc { .. } => Location::Proc {
                pid: std::process::id(),
                fd: self.fd.as_raw_fd(),
                start_time: sys::own_start_time(),
                file: sys::identity(self.fd.as_fd()).unwrap_or((0, 0)),
            },
        };
        SegmentHandle {
            location,
            kind: self.header.kind,
            type_hash: self.header.type_hash,
        }
    }
}
