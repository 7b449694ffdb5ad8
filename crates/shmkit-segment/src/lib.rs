//! Named and anonymous shared-memory segments with a checked header — the foundation
//! every other shmkit crate builds on.
//!
//! ```
//! use shmkit_segment::Segment;
//!
//! let name = format!("shmkit-doc-segment-{}", std::process::id());
//! let seg = Segment::create(&name, 4096)?;          // /dev/shm/<name>, mode 0600
//! seg.write(0, &42u64)?;
//!
//! let other = Segment::open(&name)?;                // another process would do this
//! assert_eq!(other.read::<u64>(0)?, 42);
//! drop(other);
//! drop(seg);                                        // the creator unlinks on drop
//! assert!(matches!(Segment::open(&name), Err(shmkit_segment::Error::NotFound { .. })));
//! # Ok::<(), shmkit_segment::Error>(())
//! ```
//!
//! Every segment starts with a 256-byte [header](HEADER_SIZE): magic, layout version,
//! [`Kind`], [`TypeFingerprint`], payload size, creator pid and start time, and a `ready`
//! word published last. [`Segment::open`] checks all of it and says exactly what did not
//! match. Headerless [`RawSegment`]s interoperate with other runtimes such as Python's
//! `multiprocessing.shared_memory`.
//!
//! Liveness ([`Segment::hold_liveness`], [`Segment::is_alive`], [`Segment::is_stale`])
//! rests on open-file-description locks that the kernel releases when a process dies,
//! never on a bare pid:
//!
//! ```
//! use shmkit_segment::Segment;
//!
//! let seg = Segment::anonymous(64)?;
//! let peer = seg.handle().open()?;              // as a child process would
//! let me = peer.claim_liveness_slot(0..8)?;     // register: the first free slot
//! assert!(seg.is_alive(me.slot())?);
//! drop(me);                                     // or the process dies: the kernel frees it
//! assert!(!seg.is_alive(0)?);
//! # Ok::<(), shmkit_segment::Error>(())
//! ```
//!
//! Cleaning up after crashed programs ([`list`], what `shmkit ls` and `shmkit rm --stale`
//! show):
//!
//! ```
//! for info in shmkit_segment::list()? {
//!     if info.state == shmkit_segment::SegmentState::Stale {
//!         println!("{} was left behind by pid {:?}", info.name, info.creator.map(|c| c.pid));
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Processes and `fork()`
//!
//! A child started by re-executing the program (shmkit-process's `Spawn`) reaches a
//! segment through its [`SegmentHandle`] (serde), which names the segment or, for an
//! anonymous one, `/proc/<pid>/fd/<n>` of its parent. A child made with `fork()` may also
//! use the `Segment` values it inherited: the first liveness call in the child opens an
//! open file description of its own, and the child's copies never release the parent's
//! locks or unlink the parent's names.
//!
//! # Not guarded
//!
//! A process with write access to a *named* segment's file can truncate it; the other
//! processes then get `SIGBUS` when they touch the cut-off pages (Linux offers seals only
//! for memfds, which is what anonymous segments are). Give wider modes than `0600` only
//! to processes you trust with the data.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
mod header;
mod kind;
mod list;
pub mod primitive;
mod raw;
mod sparse;
mod sys;
pub mod transit;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use header::{HEADER_SIZE, LAYOUT_VERSION, MAGIC};
pub use kind::{Kind, TypeFingerprint};
pub use list::{SegmentInfo, SegmentState, inspect, list};
pub use raw::RawSegment;

use header::{Header, READY, READY_OFFSET};
use primitive::os::{AtomicU32 as OsAtomicU32, Ordering as OsOrdering};
use primitive::{AtomicU32, AtomicU64};

/// Liveness slot `n` is an OFD lock on byte `LIVENESS_BASE + n` of the segment's file —
/// far past its end, so it costs no memory and never overlaps data.
pub const LIVENESS_BASE: u64 = 1 << 40;
/// The byte the creator keeps locked for as long as it lives.
const CREATOR_LOCK: u64 = LIVENESS_BASE - 1;
/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Default wait of `open` for a racing creator to publish `ready`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(1);

/// Remove the name `name` from the system (`shm_unlink`), whatever the file holds —
/// for cleaning up after a process that died before it could unlink what it created.
/// Processes that have it mapped keep their mapping. [`Error::NotFound`] if no such name.
///
/// ```
/// let name = format!("shmkit-doc-remove-{}", std::process::id());
/// let mut seg = shmkit_segment::Segment::create(&name, 64)?;
/// seg.set_unlink_on_drop(false);
/// drop(seg);
/// shmkit_segment::remove(&name)?;
/// assert!(matches!(shmkit_segment::remove(&name), Err(shmkit_segment::Error::NotFound { .. })));
/// # Ok::<(), shmkit_segment::Error>(())
/// ```
pub fn remove(name: &str) -> Result<()> {
    validate_name(name)?;
    sys::unlink(name).map_err(|e| Error::from_io(name, "unlink", e, 0))
}

/// Check a segment name against DESIGN rule 4: `[A-Za-z0-9._-]`, 1..=200 bytes, not `.`/`..`.
///
/// ```
/// assert!(shmkit_segment::validate_name("jobs-1.ring").is_ok());
/// assert!(shmkit_segment::validate_name("a/b").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 200 bytes");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not names");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only A-Z a-z 0-9 . _ - are allowed (no '/')");
    }
    Ok(())
}

/// Who created a segment, as written in its header: for humans and tools. Liveness is
/// decided by [`Segment::is_stale`], not by these numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatorInfo {
    /// The creator's process id.
    pub pid: u32,
    /// The creator's start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
}

/// Where a segment can be reopened from; see [`SegmentHandle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Location {
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
                Segment::open_fd(fd, label, kind, None, DEFAULT_OPEN_TIMEOUT, false)?
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

/// Builder for [`Segment`]s with more than a name and a size: kind, payload type, file
/// mode, unlink-on-drop, and how long an open waits for a racing creator.
///
/// ```
/// use shmkit_segment::{Error, Kind, Segment};
///
/// let name = format!("shmkit-doc-builder-{}", std::process::id());
/// let jobs = Segment::builder(&name)
///     .size(1 << 16)
///     .kind(Kind::Queue)
///     .typed::<[u64; 4]>()
///     .mode(0o640)
///     .create()?;
///
/// // An opener that expects something else is told exactly what it found.
/// let err = Segment::builder(&name).kind(Kind::Value).typed::<u32>().open().unwrap_err();
/// assert!(matches!(err, Error::Mismatch { .. }));
/// assert!(err.to_string().contains("holds kind Queue<[u64; 4]"));
///
/// let same = Segment::builder(&name).kind(Kind::Queue).typed::<[u64; 4]>().open()?;
/// assert_eq!(same.len(), 1 << 16);
/// # drop(jobs);
/// # Ok::<(), shmkit_segment::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    name: String,
    size: usize,
    kind: Option<Kind>,
    fingerprint: TypeFingerprint,
    mode: u32,
    unlink_on_drop: bool,
    open_timeout: Duration,
    /// Payload bytes whose pages are reserved at create (`None`: all; see `reserve_only`).
    reserve: Option<usize>,
}

impl SegmentBuilder {
    /// Payload size in bytes (the header comes on top). At [`open`](Self::open), the
    /// exact payload size expected (default 0: any).
    pub fn size(mut self, payload_size: usize) -> Self {
        self.size = payload_size;
        self
    }

    /// The kind written at create, or required at open.
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The type fingerprint written at create, or required at open.
    pub fn fingerprint(mut self, fp: TypeFingerprint) -> Self {
        self.fingerprint = fp;
        self
    }

    /// Shorthand for `.fingerprint(TypeFingerprint::of::<T>())`.
    pub fn typed<T: 'static>(self) -> Self {
        self.fingerprint(TypeFingerprint::of::<T>())
    }

    /// File mode at create (default `0o600`), set exactly with `fchmod`: the umask
    /// neither widens nor narrows it.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Whether the creator unlinks the name when dropped (default `true`).
    pub fn unlink_on_drop(mut self, yes: bool) -> Self {
        self.unlink_on_drop = yes;
        self
    }

    /// Reserve pages at create for the header and the first `payload_bytes` of the
    /// payload only; the rest of the file is sparse, to be reserved piecewise with
    /// [`Segment::reserve_range`] before it is touched (and given back with
    /// [`Segment::release_range`]). By default the whole segment is reserved at create.
    pub fn reserve_only(mut self, payload_bytes: usize) -> Self {
        self.reserve = Some(payload_bytes);
        self
    }

    /// How long `open` waits for a racing creator to publish the segment (default 1 s).
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// Create the segment: `O_CREAT | O_EXCL`, so an existing name is
    /// [`AlreadyExists`](Error::AlreadyExists), never silently opened.
    pub fn create(self) -> Result<Segment> {
        validate_name(&self.name)?;
        let total = self.total_size()?;
        let fd = sys::create_exclusive(&self.name, self.mode)
            .map_err(|e| Error::from_io(&self.name, "create", e, total as u64))?;
        // From here on the file exists: remove it again if initialisation fails.
        let result = self.init(fd, total, Location::Named(self.name.clone()));
        if result.is_err() {
            let _ = sys::unlink(&self.name);
        }
        result
    }

    /// Open an existing segment, checking every header field, and the kind, type and
    /// payload size if set on this builder (unlike `shared_memory`, whose `open` maps
    /// whatever size it finds).
    pub fn open(self) -> Result<Segment> {
        validate_name(&self.name)?;
        let fp = (!self.fingerprint.is_none()).then_some(self.fingerprint);
        let fd = sys::open_existing(&sys::shm_path(&self.name), true)
            .map_err(|e| Error::from_io(&self.name, "open", e, 0))?;
        let seg = Segment::open_fd(
            fd,
            self.name.clone(),
            self.kind,
            fp,
            self.open_timeout,
            true,
        )?;
        if self.size != 0 && seg.len() != self.size {
            return Err(Error::Mismatch {
                name: self.name,
                expected: format!("a payload of {} bytes", self.size),
                found: format!("a payload of {} bytes", seg.len()),
            });
        }
        Ok(seg)
    }

    /// Create an anonymous segment (a sealed memfd): no name in `/dev/shm`, gone with the
    /// last descriptor. Children reach it through [`Segment::handle`].
    pub fn anonymous(self) -> Result<Segment> {
        let total = self.total_size()?;
        let fd = sys::memfd(total as u64, self.reserved_bytes(total) as u64)
            .map_err(|e| Error::from_io("anonymous", "memfd_create", e, total as u64))?;
        let location = Location::Proc {
            pid: std::process::id(),
            fd: fd.as_raw_fd(),
            start_time: sys::own_start_time(),
            file: sys::identity(fd.as_fd())
                .map_err(|e| Error::from_io("anonymous", "fstat", e, 0))?,
        };
        self.init(fd, total, location)
    }

    /// Bytes of the file reserved at create (header included).
    fn reserved_bytes(&self, total: usize) -> usize {
        self.reserve
            .map_or(total, |r| r.saturating_add(HEADER_SIZE).min(total))
    }

    fn total_size(&self) -> Result<usize> {
        self.size
            .checked_add(HEADER_SIZE)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or_else(|| Error::NoSpace {
                name: self.name.clone(),
                size: u64::MAX,
            })
    }

    fn init(&self, fd: OwnedFd, total: usize, location: Location) -> Result<Segment> {
        let name = match &location {
            Location::Named(n) => n.clone(),
            Location::Proc { pid, fd, .. } => format!("anonymous:{pid}:{fd}"),
        };
        let io = |op, e| Error::from_io(&name, op, e, total as u64);
        // Hold the creator lock before the file has a size, so an opener that finds the
        // file too small can tell "still being created" from "creator died".
        if !sys::try_lock_byte(&fd, CREATOR_LOCK).map_err(|e| io("lock", e))? {
            return Err(Error::Corrupted {
                name,
                what: "creator lock already held".into(),
            });
        }
        if matches!(location, Location::Named(_)) {
            sys::set_size(&fd, total as u64, self.reserved_bytes(total) as u64)
                .map_err(|e| io("reserve", e))?;
        }
        let map = sys::Mapping::new(&fd, total).map_err(|e| io("mmap", e))?;
        let pid = std::process::id();
        let fp = self.fingerprint;
        let header = Header {
            magic: header::MAGIC,
            version: header::LAYOUT_VERSION,
            kind: self.kind.unwrap_or(Kind::Bytes).code(),
            payload_size: self.size as u64,
            creator_pid: pid,
            ready: 0,
            creator_start: sys::own_start_time(),
            created_unix: sys::now_unix_secs(),
            type_size: fp.size,
            type_align: fp.align,
            type_hash: fp.hash,
            type_name_len: fp.name_len,
            flags: 0,
            type_name: fp.name,
            reserved: [0; 136],
        };
        // Every byte but `ready`, which an opener may already be polling with atomic
        // loads: it stays the 0 of the freshly sized (zero-filled) file until published.
        let bytes = bytemuck::bytes_of(&header);
        let after_ready = READY_OFFSET + 4;
        // SAFETY: the mapping is at least HEADER_SIZE bytes (`total` >= HEADER_SIZE) and
        // both ranges lie inside [0, HEADER_SIZE) of it and of `bytes`; no other process
        // writes the header, and openers only read it after seeing `ready` published below.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.ptr(), READY_OFFSET);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr().add(after_ready),
                map.ptr().add(after_ready),
                HEADER_SIZE - after_ready,
            );
        }
        let fd = Arc::new(fd);
        let seg = Segment {
            name,
            location,
            header,
            map,
            locks: Locks::new(&fd),
            fd,
            creator: true,
            unlink_on_drop: self.unlink_on_drop,
            forked: StdMutex::new(None),
        };
        // SYNC: Release, paired with the Acquire load of `ready` in `open_fd`: an opener
        // that sees READY sees every header field written above.
        seg.ready_word().store(READY, OsOrdering::Release);
        Ok(seg)
    }
}

/// A mapped shared-memory segment with a shmkit header — the counterpart of Python's
/// `multiprocessing.shared_memory.SharedMemory`, with a checked header, liveness, and an
/// exclusive create.
///
/// The payload starts [`HEADER_SIZE`] bytes into the mapping, 128-byte aligned. Access it
/// with [`read`](Self::read)/[`write`](Self::write) (copies, bounds- and
/// alignment-checked), atomics ([`atomic_u32`](Self::atomic_u32)), or the raw
/// [`as_ptr`](Self::as_ptr) for layouts built on top.
///
/// The creator unlinks the name when dropped (see
/// [`set_unlink_on_drop`](Self::set_unlink_on_drop)); openers never do.
pub struct Segment {
    name: String,
    location: Location,
    header: Header,
    map: sys::Mapping,
    fd: Arc<OwnedFd>,
    creator: bool,
    unlink_on_drop: bool,
    /// The liveness locks of the process that made this value (`locks.pid`).
    locks: Locks,
    /// The same for a process that inherited this value through `fork()`: it must not
    /// share its parent's open file description, whose locks are the parent's.
    forked: StdMutex<Option<Locks>>,
}

/// One process's view of the liveness locks: the open file description its locks live
/// on, and the slots it holds there (the kernel reports only *other* descriptions'
/// locks, so `is_alive` must know its own).
#[derive(Debug, Clone)]
struct Locks {
    pid: u32,
    fd: Arc<OwnedFd>,
    held: Arc<StdMutex<Vec<u32>>>,
}

impl Locks {
    fn new(fd: &Arc<OwnedFd>) -> Locks {
        Locks {
            pid: std::process::id(),
            fd: Arc::clone(fd),
            held: Arc::default(),
        }
    }
}

// Segments are shared between threads (`&Segment` hands out atomics); guard types hold Arcs.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Segment>();
    send_sync::<SegmentHandle>();
    send_sync::<LivenessGuard>();
    send_sync::<RawSegment>();
};

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("kind", &self.kind())
            .field("len", &self.len())
            .field("creator", &self.creator)
            .finish()
    }
}

impl Segment {
    /// Create a named segment of `payload_size` bytes (kind [`Kind::Bytes`], mode `0600`).
    pub fn create(name: &str, payload_size: usize) -> Result<Segment> {
        Segment::builder(name).size(payload_size).create()
    }

    /// Open an existing named segment of any kind.
    pub fn open(name: &str) -> Result<Segment> {
        Segment::builder(name).open()
    }

    /// Create a headerless segment of exactly `size` bytes, for other runtimes (Python's
    /// `multiprocessing.shared_memory`): the same as [`RawSegment::create`].
    pub fn create_raw(name: &str, size: usize) -> Result<RawSegment> {
        RawSegment::create(name, size)
    }

    /// Open a segment without looking for a header (one Python made, say): the same as
    /// [`RawSegment::open`].
    pub fn open_raw(name: &str) -> Result<RawSegment> {
        RawSegment::open(name)
    }

    /// Create an anonymous (memfd-backed) segment of `payload_size` bytes.
    ///
    /// ```
    /// let seg = shmkit_segment::Segment::anonymous(64)?;
    /// let again = seg.handle().open()?;   // what a child process does with the handle
    /// seg.write(8, &7u32)?;
    /// assert_eq!(again.read::<u32>(8)?, 7);
    /// # Ok::<(), shmkit_segment::Error>(())
    /// ```
    pub fn anonymous(payload_size: usize) -> Result<Segment> {
        Segment::builder("anonymous").size(payload_size).anonymous()
    }

    /// A builder for kind, type, mode and timeouts.
    pub fn builder(name: &str) -> SegmentBuilder {
        SegmentBuilder {
            name: name.to_owned(),
            size: 0,
            kind: None,
            fingerprint: TypeFingerprint::NONE,
            mode: 0o600,
            unlink_on_drop: true,
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            reserve: None,
        }
    }

    fn open_fd(
        fd: OwnedFd,
        name: String,
        want_kind: Option<Kind>,
        want_fp: Option<TypeFingerprint>,
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
                     and no creator is initialising it"
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
        // SAFETY: the mapping is at least HEADER_SIZE bytes and page-aligned, so the
        // `ready` word at READY_OFFSET is in bounds and 4-aligned; it lives as long as `map`.
        let ready = unsafe { &*map.ptr().add(READY_OFFSET).cast::<OsAtomicU32>() };
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
                    "no header (zero bytes where it belongs): its creator died between \
                     sizing the file and writing the header, or it is not a shmkit segment"
                        .into()
                } else {
                    format!("not a shmkit segment (magic {magic:#018x})")
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
        // is Pod, so any bytes a peer wrote form a valid value, checked field by field below.
        let header = unsafe { std::ptr::read_volatile(map.ptr().cast::<Header>()) };
        if header.magic != header::MAGIC {
            return Err(corrupted(format!(
                "not a shmkit segment (magic {:#018x}, expected {:#018x})",
                header.magic,
                header::MAGIC
            )));
        }
        if header.version != header::LAYOUT_VERSION {
            return Err(Error::Mismatch {
                name,
                expected: format!("layout version {}", header::LAYOUT_VERSION),
                found: format!("layout version {}", header.version),
            });
        }
        let Some(kind) = Kind::from_code(header.kind) else {
            return Err(corrupted(format!("unknown kind code {}", header.kind)));
        };
        let available = len - HEADER_SIZE;
        if header.payload_size > available as u64 {
            return Err(corrupted(format!(
                "header says {} payload bytes but the file holds only {available}",
                header.payload_size
            )));
        }
        if header.type_name_len as usize > kind::FP_NAME_LEN {
            return Err(corrupted(format!(
                "type name length {} exceeds {}",
                header.type_name_len,
                kind::FP_NAME_LEN
            )));
        }
        let found_fp = header.fingerprint();
        let describe = |k: Kind, fp: &TypeFingerprint| {
            if fp.is_none() {
                format!("kind {k} layout {}", header::LAYOUT_VERSION)
            } else {
                format!("kind {k}<{}> layout {}", fp, header::LAYOUT_VERSION)
            }
        };
        let kind_bad = want_kind.is_some_and(|k| k != kind);
        let fp_bad = want_fp.is_some_and(|fp| fp != found_fp);
        if kind_bad || fp_bad {
            let want = want_fp.unwrap_or(found_fp);
            let (mut expected, mut found) = (
                describe(want_kind.unwrap_or(kind), &want),
                describe(kind, &found_fp),
            );
            if expected == found {
                // Same name, size and alignment: only the hash of the full type path
                // differs (a name cut at 48 bytes, or two crates' types of one name).
                expected.push_str(&format!(", type hash {:#018x}", want.hash));
                found.push_str(&format!(", type hash {:#018x}", found_fp.hash));
            }
            return Err(Error::Mismatch {
                name,
                expected,
                found,
            });
        }
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

    fn ready_word(&self) -> &OsAtomicU32 {
        // SAFETY: READY_OFFSET + 4 <= HEADER_SIZE <= mapping length; page-aligned base,
        // so 4-aligned; the reference borrows `self`, which owns the mapping.
        unsafe { &*self.map.ptr().add(READY_OFFSET).cast::<OsAtomicU32>() }
    }

    /// The segment's name (`anonymous:<pid>:<fd>` for anonymous segments).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the segment holds.
    pub fn kind(&self) -> Kind {
        Kind::from_code(self.header.kind).unwrap_or(Kind::Bytes)
    }

    /// The type fingerprint recorded at creation ([`TypeFingerprint::NONE`] if untyped).
    pub fn fingerprint(&self) -> TypeFingerprint {
        self.header.fingerprint()
    }

    /// Payload size in bytes.
    pub fn len(&self) -> usize {
        // Validated against the mapping length at open; the creator wrote it itself.
        self.header.payload_size as usize
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload's first byte: 128-byte aligned, valid for [`len`](Self::len) bytes for
    /// as long as `self` lives. Other processes may write these bytes at any time: access
    /// them with raw-pointer copies or atomics, never through `&[u8]`/`&mut [u8]`.
    pub fn as_ptr(&self) -> *mut u8 {
        // SAFETY: the mapping is at least HEADER_SIZE bytes (checked at open/create).
        unsafe { self.map.ptr().add(HEADER_SIZE) }
    }

    fn check(&self, offset: usize, len: usize, align: usize) -> Result<*mut u8> {
        let in_bounds = offset.checked_add(len).is_some_and(|end| end <= self.len());
        if !in_bounds || !(HEADER_SIZE + offset).is_multiple_of(align) {
            return Err(Error::OutOfBounds {
                name: self.name.clone(),
                offset,
                len,
                size: self.len(),
            });
        }
        // SAFETY: offset + len <= len() was just checked, so the result is in the payload.
        Ok(unsafe { self.as_ptr().add(offset) })
    }

    /// Copy a `T` out of the payload at `offset` (any alignment).
    ///
    /// A plain copy, not an atomic one: if another process writes the same bytes at the
    /// same time, the value read may mix old and new bytes (it is still a valid `T`,
    /// since `T` is `Pod`). Publish data with an atomic or a lock from shmkit-sync.
    pub fn read<T: bytemuck::Pod>(&self, offset: usize) -> Result<T> {
        let p = self.check(offset, size_of::<T>(), 1)?;
        let mut value = T::zeroed();
        // SAFETY: `p..p+size_of::<T>()` is inside the payload (checked) and `value` is a
        // distinct local; T is Pod, so any bytes — even ones a peer wrote — form a valid T.
        unsafe {
            std::ptr::copy_nonoverlapping(
                p,
                bytemuck::bytes_of_mut(&mut value).as_mut_ptr(),
                size_of::<T>(),
            )
        };
        Ok(value)
    }

    /// Copy `value` into the payload at `offset` (any alignment); not atomic, as for
    /// [`read`](Self::read).
    pub fn write<T: bytemuck::Pod>(&self, offset: usize, value: &T) -> Result<()> {
        let p = self.check(offset, size_of::<T>(), 1)?;
        // SAFETY: `p..p+size_of::<T>()` is inside the payload (checked); the write is a
        // byte copy of a Pod value into shared memory we mapped read-write.
        unsafe {
            std::ptr::copy_nonoverlapping(bytemuck::bytes_of(value).as_ptr(), p, size_of::<T>())
        };
        Ok(())
    }

    /// Copy `buf.len()` bytes out of the payload at `offset`.
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let p = self.check(offset, buf.len(), 1)?;
        // SAFETY: the source range is inside the payload (checked); `buf` is ours.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy `bytes` into the payload at `offset`.
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        let p = self.check(offset, bytes.len(), 1)?;
        // SAFETY: the destination range is inside the payload (checked).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        Ok(())
    }

    /// An atomic `u32` in the payload at `offset` (which must be 4-aligned, else
    /// [`OutOfBounds`](Error::OutOfBounds)). Other processes see its operations: this is
    /// how the layers above build futex words and ring indices.
    ///
    /// Under `cfg(loom)` this returns an error: loom cannot model another process's
    /// memory (see [`primitive`]).
    ///
    /// ```
    /// use shmkit_segment::primitive::Ordering;
    /// let seg = shmkit_segment::Segment::anonymous(64)?;
    /// seg.atomic_u32(4)?.fetch_add(2, Ordering::AcqRel);
    /// assert_eq!(seg.read::<u32>(4)?, 2);
    /// assert!(seg.atomic_u32(6).is_err()); // misaligned
    /// # Ok::<(), shmkit_segment::Error>(())
    /// ```
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        let p = self.check(offset, 4, 4)?;
        #[cfg(loom)]
        {
            let _ = p;
            Err(self.loom_unsupported("atomic_u32"))
        }
        // SAFETY: in bounds and 4-aligned (checked); core's AtomicU32 has u32's layout
        // and any bit pattern is valid; the reference borrows `self`, which keeps the
        // mapping alive.
        #[cfg(not(loom))]
        Ok(unsafe { &*p.cast::<AtomicU32>() })
    }

    /// An atomic `u64` in the payload at `offset` (which must be 8-aligned, else
    /// [`OutOfBounds`](Error::OutOfBounds)). An error under `cfg(loom)`, as for
    /// [`atomic_u32`](Self::atomic_u32).
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        let p = self.check(offset, 8, 8)?;
        #[cfg(loom)]
        {
            let _ = p;
            Err(self.loom_unsupported("atomic_u64"))
        }
        // SAFETY: in bounds and 8-aligned (checked); as for `atomic_u32`.
        #[cfg(not(loom))]
        Ok(unsafe { &*p.cast::<AtomicU64>() })
    }

    #[cfg(loom)]
    fn loom_unsupported(&self, op: &'static str) -> Error {
        Error::Io {
            name: self.name.clone(),
            op,
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "loom cannot model shared memory; check the algorithm over a heap buffer",
            ),
        }
    }

    /// Whether this handle created the segment.
    pub fn is_creator(&self) -> bool {
        self.creator
    }

    /// Whether dropping this (creator) handle unlinks the name. Openers never unlink.
    pub fn set_unlink_on_drop(&mut self, yes: bool) {
        self.unlink_on_drop = yes && self.creator;
    }

    /// Remove the name from `/dev/shm` now. Existing mappings stay valid; new opens fail
    /// with [`NotFound`](Error::NotFound). A no-op for anonymous segments.
    pub fn unlink(&self) -> Result<()> {
        match &self.location {
            Location::Named(name) => {
                sys::unlink(name).map_err(|e| Error::from_io(name, "unlink", e, 0))
            }
            Location::Proc { .. } => Ok(()),
        }
    }

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

    /// Who created the segment, from its header.
    pub fn creator(&self) -> CreatorInfo {
        CreatorInfo {
            pid: self.header.creator_pid,
            start_time: self.header.creator_start,
            created_unix: self.header.created_unix,
        }
    }

    /// Whether the creator is gone (its creator lock is released; the kernel does that
    /// when it dies). A stale named segment is what `shmkit rm --stale` removes.
    pub fn is_stale(&self) -> bool {
        if self.creator && std::process::id() == self.locks.pid {
            return false;
        }
        self.locks()
            .and_then(|l| {
                sys::byte_locked_elsewhere(&*l.fd, CREATOR_LOCK)
                    .map_err(|e| Error::from_io(&self.name, "fcntl", e, 0))
            })
            .is_ok_and(|locked| !locked)
    }

    /// This process's liveness locks. A process that inherited the segment through
    /// `fork()` gets an open file description of its own (by reopening
    /// `/proc/self/fd/<fd>`), so that its locks and its parent's see each other.
    fn locks(&self) -> Result<Locks> {
        let me = std::process::id();
        if me == self.locks.pid {
            return Ok(self.locks.clone());
        }
        let mut forked = self.forked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = forked.as_ref().filter(|l| l.pid == me) {
            return Ok(l.clone());
        }
        let fd = sys::open_proc_fd(&format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
            .map_err(|e| Error::from_io(&self.name, "reopen after fork", e, 0))?;
        let l = Locks::new(&Arc::new(fd));
        *forked = Some(l.clone());
        Ok(l)
    }

    /// Hold liveness slot `slot` for as long as the guard lives (and no longer than this
    /// process): others see [`is_alive(slot)`](Self::is_alive) true until then.
    /// [`SlotBusy`](Error::SlotBusy) if another participant holds it — or this same
    /// segment value already does.
    ///
    /// The lock is an OFD lock (`F_OFD_SETLK`) on byte [`LIVENESS_BASE`]` + slot` of the
    /// segment's file: it costs no memory, and the kernel releases it when the holder's
    /// process dies, so a reused pid can never pass for a live participant.
    ///
    /// ```
    /// # use shmkit_segment::{Error, Segment};
    /// let a = Segment::anonymous(8)?;
    /// let b = a.handle().open()?;
    /// let held = a.hold_liveness(3)?;
    /// assert!(matches!(b.hold_liveness(3), Err(Error::SlotBusy { slot: 3, .. })));
    /// assert!(b.is_alive(3)?);
    /// drop(held);
    /// assert!(!b.is_alive(3)?);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn hold_liveness(&self, slot: u32) -> Result<LivenessGuard> {
        let offset = LIVENESS_BASE + u64::from(slot);
        let locks = self.locks()?;
        let mut held = locks.held.lock().unwrap_or_else(|p| p.into_inner());
        let got = !held.contains(&slot)
            && sys::try_lock_byte(&*locks.fd, offset)
                .map_err(|e| Error::from_io(&self.name, "fcntl", e, 0))?;
        if !got {
            return Err(Error::SlotBusy {
                name: self.name.clone(),
                slot,
            });
        }
        held.push(slot);
        drop(held);
        Ok(LivenessGuard {
            locks,
            slot,
            offset,
        })
    }

    /// The first free slot in `range`, held: how a participant registers (mutex users,
    /// ring producers). [`SlotBusy`](Error::SlotBusy) (for the range's end) if all are taken.
    pub fn claim_liveness_slot(&self, range: std::ops::Range<u32>) -> Result<LivenessGuard> {
        for slot in range.clone() {
            match self.hold_liveness(slot) {
                Ok(g) => return Ok(g),
                Err(Error::SlotBusy { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::SlotBusy {
            name: self.name.clone(),
            slot: range.end,
        })
    }

    /// Whether liveness slot `slot` is held by a live participant (this handle included).
    pub fn is_alive(&self, slot: u32) -> Result<bool> {
        let locks = self.locks()?;
        if locks
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&slot)
        {
            return Ok(true);
        }
        sys::byte_locked_elsewhere(&*locks.fd, LIVENESS_BASE + u64::from(slot))
            .map_err(|e| Error::from_io(&self.name, "fcntl", e, 0))
    }
}

/// A held liveness slot; the kernel releases it if this process dies, and dropping the
/// guard releases it too. See [`Segment::hold_liveness`].
#[derive(Debug)]
pub struct LivenessGuard {
    locks: Locks,
    slot: u32,
    offset: u64,
}

impl LivenessGuard {
    /// The slot held.
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

impl Drop for LivenessGuard {
    fn drop(&mut self) {
        // A copy inherited through fork() must not release its parent's lock (the open
        // file description, and so the lock, is shared with the parent).
        if std::process::id() != self.locks.pid {
            return;
        }
        let _ = sys::unlock_byte(&*self.locks.fd, self.offset);
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|&s| s != self.slot);
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Only the creating process unlinks: a copy inherited through fork() and dropped
        // in the child must leave the name to its parent.
        let creating_process = std::process::id() == self.locks.pid;
        if let (true, Location::Named(name)) = (
            self.creator && self.unlink_on_drop && creating_process,
            &self.location,
        ) {
            // Unlink only if the name still refers to *our* file: after an explicit
            // unlink another process may have created a new segment of that name.
            let ours = sys::identity(self.fd.as_fd()).ok();
            if ours.is_some() && sys::path_identity(&sys::shm_path(name)).ok() == ours {
                let _ = sys::unlink(name);
            }
        }
    }
}

fn backoff(start: Instant) {
    if start.elapsed() < Duration::from_millis(1) {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_design_rule_4() {
        for good in [
            "a",
            "jobs",
            "psm_ab12",
            "x.y-z_1",
            &"n".repeat(MAX_NAME_LEN),
        ] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "", ".", "..", "a/b", "/abs", "sp ace", "tab\t", "ümlaut", "nul\0",
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
        let long = "n".repeat(MAX_NAME_LEN + 1);
        let err = validate_name(&long).unwrap_err();
        assert!(err.to_string().contains("longer than 200 bytes"), "{err}");
    }

    proptest! {
        /// validate_name agrees with a one-line model of the rule.
        #[test]
        #[cfg_attr(miri, ignore)] // proptest persists failures to files
        fn name_validation_matches_the_model(name in "[A-Za-z0-9._/ -]{0,210}") {
            let model = (1..=MAX_NAME_LEN).contains(&name.len())
                && name != "." && name != ".."
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
            prop_assert_eq!(validate_name(&name).is_ok(), model);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // memfd_create, mmap
    fn reads_and_writes_match_a_byte_vector_model() {
        let seg = Segment::anonymous(256).unwrap();
        let model = std::cell::RefCell::new(vec![0u8; 256]);
        proptest!(ProptestConfig::with_cases(200), |(offset in 0usize..300, value: u64, wide: bool)| {
            let r = if wide { seg.write(offset, &value) } else { seg.write(offset, &(value as u16)) };
            let n = if wide { 8 } else { 2 };
            let mut model = model.borrow_mut();
            if offset + n <= model.len() {
                prop_assert!(r.is_ok());
                model[offset..offset + n].copy_from_slice(&value.to_le_bytes()[..n]);
            } else {
                let is_oob = matches!(r, Err(Error::OutOfBounds { .. }));
                prop_assert!(is_oob);
            }
            let mut all = vec![0u8; 256];
            seg.read_bytes(0, &mut all).unwrap();
            prop_assert_eq!(&all, &*model);
        });
    }
}
