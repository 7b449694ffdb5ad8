//! Headerless segments, for interoperating with runtimes that do not know shmkit's header.

use std::os::fd::{AsFd, OwnedFd};

use crate::{Error, Result, sys, validate_name};

/// A named shared-memory file with no shmkit header: the whole file is payload.
///
/// This is how shmkit shares memory with Python's
/// `multiprocessing.shared_memory.SharedMemory`: a segment Python made with
/// `SharedMemory(create=True, size=N)` (named `psm_*`, mode `0600`) opens with
/// [`RawSegment::open`], and Python opens one made by [`RawSegment::create`] with
/// `SharedMemory(name=...)`. Without a header nothing is checked but the size, so prefer
/// [`Segment`](crate::Segment) between shmkit processes.
///
/// ```
/// use shmkit_segment::RawSegment;
/// let name = format!("shmkit-doc-raw-{}", std::process::id());
/// let raw = RawSegment::create(&name, 16)?;
/// raw.write_bytes(0, b"hello")?;
/// let other = RawSegment::open(&name)?;
/// let mut buf = [0u8; 5];
/// other.read_bytes(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), shmkit_segment::Error>(())
/// ```
#[derive(Debug)]
pub struct RawSegment {
    name: String,
    map: Option<sys::Mapping>,
    fd: OwnedFd,
    creator: bool,
    unlink_on_drop: bool,
    /// The creating process: a copy inherited through `fork()` never unlinks.
    pid: u32,
}

impl RawSegment {
    /// Create `/dev/shm/<name>` of exactly `size` bytes, `O_EXCL`, mode `0600`.
    pub fn create(name: &str, size: usize) -> Result<RawSegment> {
        validate_name(name)?;
        let fd = sys::create_exclusive(name, 0o600)
            .map_err(|e| Error::from_io(name, "create", e, size as u64))?;
        let result = sys::set_size(&fd, size as u64, size as u64)
            .map_err(|e| Error::from_io(name, "reserve", e, size as u64))
            .and_then(|()| Self::map(name, fd, size, true));
        if result.is_err() {
            let _ = sys::unlink(name);
        }
        result
    }

    /// Open an existing `/dev/shm/<name>` of any size (which may be 0).
    pub fn open(name: &str) -> Result<RawSegment> {
        validate_name(name)?;
        let fd = sys::open_existing(&sys::shm_path(name), true)
            .map_err(|e| Error::from_io(name, "open", e, 0))?;
        let size = sys::file_size(&fd).map_err(|e| Error::from_io(name, "fstat", e, 0))?;
        let size = usize::try_from(size).map_err(|_| Error::Corrupted {
            name: name.to_owned(),
            what: format!("size {size} does not fit in memory"),
        })?;
        Self::map(name, fd, size, false)
    }

    fn map(name: &str, fd: OwnedFd, size: usize, creator: bool) -> Result<RawSegment> {
        let map = if size == 0 {
            None
        } else {
            Some(sys::Mapping::new(&fd, size).map_err(|e| Error::from_io(name, "mmap", e, 0))?)
        };
        Ok(RawSegment {
            name: name.to_owned(),
            map,
            fd,
            creator,
            unlink_on_drop: creator,
            pid: std::process::id(),
        })
    }

    /// The name under `/dev/shm`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether the segment has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first byte (null for an empty segment). Other processes may write these
    /// bytes at any time: use raw-pointer copies, never `&[u8]`.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_ref().map_or(std::ptr::null_mut(), |m| m.ptr())
    }

    fn range(&self, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() && len > 0 => {
                // SAFETY: offset + len <= len() (checked), so the pointer is in the mapping.
                Ok(unsafe { self.as_ptr().add(offset) })
            }
            Some(end) if end <= self.len() => Ok(std::ptr::null_mut()),
            _ => Err(Error::OutOfBounds {
                name: self.name.clone(),
                offset,
                len,
                size: self.len(),
            }),
        }
    }

    /// Copy bytes out at `offset`.
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let p = self.range(offset, buf.len())?;
        if !buf.is_empty() {
            // SAFETY: the source range lies inside the mapping (checked by `range`).
            unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        }
        Ok(())
    }

    /// Copy bytes in at `offset`.
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        let p = self.range(offset, bytes.len())?;
        if !bytes.is_empty() {
            // SAFETY: the destination range lies inside the mapping (checked by `range`).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        }
        Ok(())
    }

    /// Copy a `T` out at `offset` (any alignment; not atomic).
    pub fn read<T: bytemuck::Pod>(&self, offset: usize) -> Result<T> {
        let mut value = T::zeroed();
        self.read_bytes(offset, bytemuck::bytes_of_mut(&mut value))?;
        Ok(value)
    }

    /// Copy `value` in at `offset` (any alignment; not atomic).
    pub fn write<T: bytemuck::Pod>(&self, offset: usize, value: &T) -> Result<()> {
        self.write_bytes(offset, bytemuck::bytes_of(value))
    }

    /// Whether this handle created the segment.
    pub fn is_creator(&self) -> bool {
        self.creator
    }

    /// Whether dropping this creator handle unlinks the name (default `true`).
    pub fn set_unlink_on_drop(&mut self, yes: bool) {
        self.unlink_on_drop = yes && self.creator;
    }

    /// Remove the name now.
    pub fn unlink(&self) -> Result<()> {
        sys::unlink(&self.name).map_err(|e| Error::from_io(&self.name, "unlink", e, 0))
    }
}

impl Drop for RawSegment {
    fn drop(&mut self) {
        if self.unlink_on_drop && std::process::id() == self.pid {
            let ours = sys::identity(self.fd.as_fd()).ok();
            if ours.is_some() && sys::path_identity(&sys::shm_path(&self.name)).ok() == ours {
                let _ = sys::unlink(&self.name);
            }
        }
    }
}
