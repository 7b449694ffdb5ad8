//! `SegmentHandle`: a serializable reference that reopens a segment in another process.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::builder::DEFAULT_OPEN_TIMEOUT;
use crate::header::Wanted;
use crate::{Error, Kind, Result, Segment, sys, travel};

/// Where a segment can be reopened from; see [`SegmentHandle`].
#[derive(Debug, Clone)]
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
    /// An anonymous segment whose descriptor came with the handle's bytes
    /// ([`crate::travel`]): the handle holds it, so it opens for as long as the handle
    /// lives, whatever the sender does meanwhile.
    Held {
        fd: Arc<OwnedFd>,
        file: (u64, u64),
    },
}

impl Location {
    pub(crate) fn name(&self) -> String {
        match self {
            Location::Named(n) => n.clone(),
            Location::Proc { pid, fd, .. } => format!("anonymous:{pid}:{fd}"),
            Location::Held { fd, .. } => {
                format!("anonymous:{}:{}", std::process::id(), fd.as_raw_fd())
            }
        }
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        LocationWire::from(self) == LocationWire::from(other)
    }
}

impl Eq for Location {}

/// How a [`Location`] is written. A `Passed` index is valid only next to the descriptors
/// sent with the bytes ([`crate::collect_descriptors`] / [`crate::with_descriptors`]).
#[derive(PartialEq, Serialize, Deserialize)]
enum LocationWire {
    Named(String),
    Proc {
        pid: u32,
        fd: i32,
        start_time: u64,
        file: (u64, u64),
    },
    Passed {
        index: u32,
        file: (u64, u64),
    },
}

impl From<&Location> for LocationWire {
    fn from(l: &Location) -> Self {
        match l {
            Location::Named(n) => LocationWire::Named(n.clone()),
            Location::Proc {
                pid,
                fd,
                start_time,
                file,
            } => LocationWire::Proc {
                pid: *pid,
                fd: *fd,
                start_time: *start_time,
                file: *file,
            },
            Location::Held { fd, file } => LocationWire::Proc {
                pid: std::process::id(),
                fd: fd.as_raw_fd(),
                start_time: sys::own_start_time(),
                file: *file,
            },
        }
    }
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let wire = LocationWire::from(self);
        // An anonymous segment of this process travels as a descriptor when a launcher
        // collects them (`collect_descriptors`), if the descriptor number still names the
        // same file; otherwise it is written as the path, which then fails to open.
        let passed = match &wire {
            LocationWire::Proc { pid, fd, file, .. } if *pid == std::process::id() => {
                travel::pass(*file, || {
                    // Reopened by number, never borrowed: `fd` comes from a handle, which
                    // may be a deserialized (untrusted) value or name a descriptor closed
                    // or reused since; a failed open or another file leaves the path.
                    let fd = sys::open_proc_fd(&format!("/proc/self/fd/{fd}")).ok()?;
                    (sys::identity(fd.as_fd()).ok() == Some(*file)).then_some(fd)
                })
                .map(|index| LocationWire::Passed { index, file: *file })
            }
            _ => None,
        };
        passed.unwrap_or(wire).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match LocationWire::deserialize(d)? {
            LocationWire::Named(n) => Location::Named(n),
            LocationWire::Proc {
                pid,
                fd,
                start_time,
                file,
            } => Location::Proc {
                pid,
                fd,
                start_time,
                file,
            },
            LocationWire::Passed { index, file } => {
                let fd = travel::received(index).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "an anonymous segment's handle names descriptor #{index} sent with \
                         it, and none came (decode inside shmkit_segment::with_descriptors)"
                    ))
                })?;
                Location::Held {
                    fd: Arc::new(fd),
                    file,
                }
            }
        })
    }
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
            Location::Held { fd, file } => {
                let label = self.name();
                // Reopened through /proc rather than used as it is: a new open file
                // description, so this opener's liveness locks are its own.
                let fd = sys::open_proc_fd(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map_err(|e| Error::from_io(&label, "open", e, 0))?;
                if sys::identity(fd.as_fd()).ok() != Some(*file) {
                    return Err(Error::NotFound { name: label });
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
        self.location.name()
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
            Location::Proc { .. } | Location::Held { .. } => Location::Proc {
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

impl Segment {
    /// Another handle to this segment in this process (a new open file description, with
    /// liveness slots of its own; never the creator, so dropping it unlinks nothing).
    pub fn try_clone(&self) -> Result<Segment> {
        self.handle().open()
    }
}

impl Clone for Segment {
    /// [`try_clone`](Segment::try_clone); panics only if the segment cannot be reopened
    /// (descriptors exhausted).
    fn clone(&self) -> Self {
        self.try_clone()
            .unwrap_or_else(|e| panic!("clone of segment '{}': {e}", self.name()))
    }
}

/// A segment passes to another process as itself, like every shmkit object: pass a
/// clone as a `shmkit_process::spawn` argument and take a `Segment` there. What travels
/// is its [`SegmentHandle`]; serializing leaves this segment as it was.
impl Serialize for Segment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.handle().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Segment {
    /// Opens the segment the handle names (a new opener here).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        SegmentHandle::deserialize(d)?
            .open()
            .map_err(serde::de::Error::custom)
    }
}
