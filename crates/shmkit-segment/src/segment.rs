//! `Segment`: a mapped segment with a checked header, and its bounds-checked access.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex as StdMutex};

use crate::handle::Location;
use crate::header::{HEADER_SIZE, Header, READY_OFFSET};
use crate::liveness::{LivenessGuard, Locks};
use crate::primitive::os::AtomicU32 as OsAtomicU32;
use crate::primitive::{AtomicU32, AtomicU64};
use crate::{Error, Kind, RawSegment, Result, SegmentHandle, TypeFingerprint, sys};

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
    pub(crate) name: String,
    pub(crate) location: Location,
    pub(crate) header: Header,
    pub(crate) map: sys::Mapping,
    pub(crate) fd: Arc<OwnedFd>,
    pub(crate) creator: bool,
    pub(crate) unlink_on_drop: bool,
    /// The liveness locks of the process that made this value (`locks.pid`).
    pub(crate) locks: Locks,
    /// The same for a process that inherited this value through `fork()`: it must not
    /// share its parent's open file description, whose locks are the parent's.
    pub(crate) forked: StdMutex<Option<Locks>>,
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

    pub(crate) fn ready_word(&self) -> &OsAtomicU32 {
        // SAFETY: READY_OFFSET + 4 <= HEADER_SIZE <= mapping length: in bounds.
        let word = unsafe { self.map.ptr().add(READY_OFFSET) };
        // SAFETY: in bounds (above); page-aligned base, so 4-aligned; the reference
        // borrows `self`, which owns the mapping; the word is only accessed atomically.
        unsafe { &*word.cast::<OsAtomicU32>() }
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
    /// The type is [`std::sync::atomic::AtomicU32`]. Under `cfg(shmkit_loom)` it is loom's,
    /// and this returns an error: loom cannot model another process's memory (loom models
    /// check the algorithms over heap buffers instead, DESIGN rule 9).
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let seg = shmkit_segment::Segment::anonymous(64)?;
    /// seg.atomic_u32(4)?.fetch_add(2, Ordering::AcqRel);
    /// assert_eq!(seg.read::<u32>(4)?, 2);
    /// assert!(seg.atomic_u32(6).is_err()); // misaligned
    /// # Ok::<(), shmkit_segment::Error>(())
    /// ```
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        let p = self.check(offset, 4, 4)?;
        #[cfg(shmkit_loom)]
        {
            let _ = p;
            Err(self.loom_unsupported("atomic_u32"))
        }
        // SAFETY: in bounds and 4-aligned (checked); core's AtomicU32 has u32's layout
        // and any bit pattern is valid; the reference borrows `self`, which keeps the
        // mapping alive.
        #[cfg(not(shmkit_loom))]
        Ok(unsafe { &*p.cast::<AtomicU32>() })
    }

    /// An atomic `u64` in the payload at `offset` (which must be 8-aligned, else
    /// [`OutOfBounds`](Error::OutOfBounds)). An error under `cfg(shmkit_loom)`, as for
    /// [`atomic_u32`](Self::atomic_u32).
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        let p = self.check(offset, 8, 8)?;
        #[cfg(shmkit_loom)]
        {
            let _ = p;
            Err(self.loom_unsupported("atomic_u64"))
        }
        // SAFETY: in bounds and 8-aligned (checked); as for `atomic_u32`.
        #[cfg(not(shmkit_loom))]
        Ok(unsafe { &*p.cast::<AtomicU64>() })
    }

    #[cfg(shmkit_loom)]
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
            Location::Proc { .. } | Location::Held { .. } => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
