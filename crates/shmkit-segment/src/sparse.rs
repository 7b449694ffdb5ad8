//! Sparse segments: reserving pages before they are touched, and giving them back.
//! A segment created with [`SegmentBuilder::reserve_only`](crate::SegmentBuilder::reserve_only)
//! holds pages only where they were reserved (or touched): a queue that grows with what
//! is unconsumed and shrinks once it is drained.

use crate::error::{Error, Result};
use crate::header::HEADER_SIZE;
use crate::{Segment, sys};

impl Segment {
    /// Reserve the pages of payload bytes `offset..offset + len` now, so that touching
    /// them later cannot `SIGBUS`: [`NoSpace`](Error::NoSpace) if `/dev/shm` is full.
    /// Pages already reserved stay as they are (their bytes are kept).
    pub fn reserve_range(&self, offset: usize, len: usize) -> Result<()> {
        let at = self.file_range(offset, len)?;
        sys::reserve_range(&self.fd, at, len as u64)
            .map_err(|e| Error::from_io(&self.name, "fallocate", e, len as u64))
    }

    /// Give back the pages of payload bytes `offset..offset + len` (whole pages inside
    /// the range; a partial page at either end stays). They read as zeros afterwards,
    /// in every process's mapping; the caller makes sure nobody needs their bytes.
    pub fn release_range(&self, offset: usize, len: usize) -> Result<()> {
        let at = self.file_range(offset, len)?;
        sys::release_range(&self.fd, at, len as u64)
            .map_err(|e| Error::from_io(&self.name, "fallocate(PUNCH_HOLE)", e, len as u64))
    }

    /// The file offset of payload range `offset..offset + len`, checked to lie inside
    /// the payload.
    fn file_range(&self, offset: usize, len: usize) -> Result<u64> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok((HEADER_SIZE + offset) as u64),
            _ => Err(Error::OutOfBounds {
                name: self.name.clone(),
                offset,
                len,
                size: self.len(),
            }),
        }
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use crate::Segment;

    fn allocated_bytes(seg: &Segment) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let path = format!("/dev/shm/{}", seg.name());
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn a_sparse_segment_holds_pages_only_where_reserved() {
        let name = format!("shmkit-test-sparse-{}", std::process::id());
        let seg = Segment::builder(&name)
            .size(64 << 20)
            .reserve_only(0)
            .create()
            .unwrap();
        assert!(allocated_bytes(&seg) < 1 << 20);
        seg.reserve_range(1 << 20, 8 << 20).unwrap();
        assert!(allocated_bytes(&seg) >= 8 << 20);
        seg.write_bytes(1 << 20, b"kept").unwrap();
        seg.reserve_range(1 << 20, 4096).unwrap();
        let mut buf = [0u8; 4];
        seg.read_bytes(1 << 20, &mut buf).unwrap();
        assert_eq!(&buf, b"kept");
        seg.release_range(1 << 20, 8 << 20).unwrap();
        assert!(allocated_bytes(&seg) < 1 << 20);
        seg.read_bytes(1 << 20, &mut buf).unwrap();
        assert_eq!(buf, [0; 4]);
        assert!(seg.reserve_range(64 << 20, 1).is_err());
    }
}
