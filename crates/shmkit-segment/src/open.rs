//! Opening an existing segment: wait (bounded) for a racing creator, then check the header.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use crate::handle::Location;
use crate::header::{self, HEADER_SIZE, Header, READY, READY_OFFSET, Wanted};
use crate::liveness::{CREATOR_LOCK, Locks};
use crate::primitive::os::{AtomicU32 as OsAtomicU32, Ordering as OsOrdering};
use crate::{Error, Result, Segment, sys};

impl Segment {
    /// Open the segment whose file `fd` is: wait up to `timeout` for a creator still at
    /// work, map it, and accept it only if its header passes [`Header::validate`] for
    /// what is `wanted`. `named`: reached by a name in /dev/shm (else an anonymous
    /// segment, reached through another process's descriptor).
    pub(crate) fn open_fd(
        fd: OwnedFd,
        name: String,
        wanted: Wanted,
        timeout: Duration,
        named: bool,
    ) -> Result<Segment> {
        let start = Instant::now();
        let corrupted = |what: String| Error::Corrupted {
            name: name.clone(),
            what,
        };
        if !sys::is_regular_file(&fd) {
            return Err(corrupted("not a regular file".into()));
        }
        // Wait (bounded) for a racing creator to size the file. The creator takes its
        // lock before it sizes the file, so a non-empty file too small for its header
        // whose creator lock is free will never grow: corrupted, at once. An *empty* one
        // may belong to a creator between its O_EXCL create and its lock (microseconds):
        // that one gets the whole timeout before it is called corrupted.
        let size = loop {
            let size = sys::file_size(&fd).map_err(|e| Error::from_io(&name, "fstat", e, 0))?;
            if size >= HEADER_SIZE as u64 {
                break size;
            }
            let creating = sys::byte_locked_elsewhere(&fd, CREATOR_LOCK)
                .map_err(|e| Error::from_io(&name, "fcntl", e, 0))?;
            let small = || {
                corrupted(format!(
                    "the file is {size} bytes, smaller than the {HEADER_SIZE}-byte header, \
                     and no creator is initialising it{NOT_OURS}"
                ))
            };
            if !creating && size > 0 {
                return Err(small());
            }
            if start.elapsed() >= timeout {
                return Err(if creating {
                    Error::NotReady {
                        name,
                        waited: start.elapsed(),
                    }
                } else {
                    small()
                });
            }
            backoff(start);
        };
        let len = usize::try_from(size).map_err(|_| corrupted(format!("size {size} too large")))?;
        let map = sys::Mapping::new(&fd, len).map_err(|e| Error::from_io(&name, "mmap", e, 0))?;
        // SAFETY: the mapping is at least HEADER_SIZE bytes, so READY_OFFSET is in bounds.
        let ready = unsafe { map.ptr().add(READY_OFFSET) };
        // SAFETY: in bounds (above) and 4-aligned (a page-aligned base plus 28); the word
        // lives as long as `map`, and is only ever accessed atomically.
        let ready = unsafe { &*ready.cast::<OsAtomicU32>() };
        // SYNC: Acquire, paired with the creator's Release store of READY in `init`.
        while ready.load(OsOrdering::Acquire) != READY {
            let creating = sys::byte_locked_elsewhere(&fd, CREATOR_LOCK)
                .map_err(|e| Error::from_io(&name, "fcntl", e, 0))?;
            // The creator may have published and dropped the segment between our load
            // of `ready` and our look at its lock: look at `ready` once more.
            // SYNC: Acquire, as above.
            if !creating && ready.load(OsOrdering::Acquire) == READY {
                break;
            }
            if !creating {
                // Either a creator that died mid-initialisation, or not a shmkit file.
                // SAFETY: in bounds as above; a volatile copy of plain integers.
                let magic = unsafe { std::ptr::read_volatile(map.ptr().cast::<u64>()) };
                return Err(corrupted(if magic == header::MAGIC {
                    "its creator died before publishing it (ready never set)".into()
                } else if magic == 0 {
                    format!(
                        "no header (zero bytes where it belongs): its creator died between \
                         sizing the file and writing the header, or it is not a shmkit \
                         segment{NOT_OURS}"
                    )
                } else {
                    format!("not a shmkit segment (magic {magic:#018x}){NOT_OURS}")
                }));
            }
            if start.elapsed() >= timeout {
                return Err(Error::NotReady {
                    name,
                    waited: start.elapsed(),
                });
            }
            backoff(start);
        }
        // SAFETY: in bounds and aligned (page-aligned mapping, HEADER_SIZE bytes); Header
        // is Pod, so any bytes a peer wrote form a valid value, checked by `validate` below.
        let header = unsafe { std::ptr::read_volatile(map.ptr().cast::<Header>()) };
        header
            .validate(len, wanted)
            .map_err(|refusal| refusal.into_error(name.clone()))?;
        let location = if named {
            Location::Named(name.clone())
        } else {
            // Not used to reopen: `handle()` of an opener names its own descriptor.
            Location::Proc {
                pid: header.creator_pid,
                fd: -1,
                start_time: header.creator_start,
                file: (0, 0),
            }
        };
        let fd = Arc::new(fd);
        Ok(Segment {
            name,
            location,
            header,
            map,
            locks: Locks::new(&fd),
            fd,
            creator: false,
            unlink_on_drop: false,
            forked: StdMutex::new(None),
        })
    }
}

/// Said of a file with no shmkit header and no creator at work: most often a segment
/// another runtime made — Python's `SharedMemory` writes no header — which
/// `Segment::open_raw` maps as it is.
const NOT_OURS: &str = "; if another program made it (Python's SharedMemory writes no \
                        header), open it with Segment::open_raw";

fn backoff(start: Instant) {
    if start.elapsed() < Duration::from_millis(1) {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(200));
    }
}
