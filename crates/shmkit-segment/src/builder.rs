//! `SegmentBuilder`: create, open and anonymous segments with kind, type, mode and timeouts.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use crate::handle::Location;
use crate::header::{self, HEADER_SIZE, Header, READY, READY_OFFSET, Wanted};
use crate::liveness::{CREATOR_LOCK, Locks};
use crate::primitive::os::Ordering as OsOrdering;
use crate::{Error, Kind, Result, Segment, TypeFingerprint, sys, validate_name};

/// Default wait of `open` for a racing creator to publish `ready`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(1);

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

    /// How long `open` waits for a racing creator to publish the segment (default 1 s).
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
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
        let wanted = Wanted {
            kind: self.kind,
            fingerprint: fp,
        };
        let seg = Segment::open_fd(fd, self.name.clone(), wanted, self.open_timeout, true)?;
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
        let name = location.name();
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
        // [0, READY_OFFSET) lies inside it and inside `bytes`; no other process writes the
        // header, and openers only read it after seeing `ready` published below.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.ptr(), READY_OFFSET) };
        // SAFETY: after_ready < HEADER_SIZE <= the mapping's length: in bounds.
        let dst = unsafe { map.ptr().add(after_ready) };
        // SAFETY: [after_ready, HEADER_SIZE) lies inside the mapping (as above) and is
        // exactly the rest of `bytes`; nobody else writes or reads it yet (as above).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes[after_ready..].as_ptr(),
                dst,
                HEADER_SIZE - after_ready,
            )
        };
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

impl Segment {
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
}
