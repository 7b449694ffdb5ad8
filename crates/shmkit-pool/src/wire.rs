//! Messages between the pool and its workers, and the blob segments that carry
//! arguments or results too large to travel inline.
//!
//! Every segment of a pool is anonymous (a memfd): a blob travels as the
//! [`SegmentHandle`] of its maker's descriptor, which the other side opens through
//! `/proc/<pid>/fd/<n>` while the maker holds it. Nothing has a name in `/dev/shm`, so
//! nothing is left there however the pool or a worker ends.

use crate::func::FnToken;
use serde::{Deserialize, Serialize};
use shmkit_segment::{Segment, SegmentHandle};
use std::borrow::Cow;

/// Encoded chunk inputs or outcomes above this size travel in a segment of their own
/// (a "blob"), so that the rings stay small and a MiB argument never blocks them.
pub(crate) const INLINE_MAX: usize = 32 * 1024;

/// `chunk` of a [`Done`] saying that the initializer failed.
pub(crate) const INIT_FAILED: u64 = u64::MAX;

/// Pool -> worker, on the worker's own SPSC ring.
#[derive(Serialize, Deserialize)]
pub(crate) struct Task<'a> {
    pub chunk: u64,
    pub func: FnToken,
    #[serde(borrow)]
    pub body: Body<'a>,
}

/// Where a chunk's encoded inputs are.
#[derive(Serialize, Deserialize)]
pub(crate) enum Body<'a> {
    Inline(&'a [u8]),
    /// In an anonymous blob segment the pool holds until the chunk is done; opened only
    /// if it is a descriptor of the pool's own process ([`blob_open`]).
    Blob {
        len: u64,
        blob: SegmentHandle,
    },
}

/// Worker -> pool, on the worker's result ring: the outcome of one chunk, sent as soon
/// as it ran. Borrowed on both sides: the worker encodes from its output buffer, the
/// pool decodes in place in the ring (no allocation per chunk on either side).
#[derive(Serialize, Deserialize)]
pub(crate) struct Done<'a> {
    /// The chunk ([`INIT_FAILED`]: the initializer failed).
    pub chunk: u64,
    /// How long it ran, in microseconds.
    pub ran_us: u64,
    #[serde(borrow)]
    pub outcome: Outcome<'a>,
}

/// What became of a chunk.
#[derive(Serialize, Deserialize)]
pub(crate) enum Outcome<'a> {
    /// The encoded `Vec<Result<R, String>>`.
    Inline(&'a [u8]),
    /// In an anonymous blob segment of the worker's, which the worker holds until the
    /// pool has opened it: the pool then writes `seq` to the worker's "taken" word.
    Blob {
        len: u64,
        seq: u64,
        blob: SegmentHandle,
    },
    /// It could not run (its function token did not verify, its arguments or results
    /// could not be read or stored).
    Failed(#[serde(borrow)] Cow<'a, str>),
}

/// Create an anonymous blob holding `bytes`.
pub(crate) fn blob_create(bytes: &[u8]) -> shmkit_segment::Result<Segment> {
    let seg = Segment::anonymous(bytes.len().max(1))?;
    seg.write_bytes(0, bytes)?;
    Ok(seg)
}

/// Open the blob `handle` (read from a ring: untrusted), but only if it is a descriptor
/// of process `maker`, the one that should have made it: a handle read from a ring
/// never makes this process open another process's files.
pub(crate) fn blob_open(handle: &SegmentHandle, maker: u32) -> shmkit_segment::Result<Segment> {
    // `SegmentHandle::name` is documented as `anonymous:<pid>:<fd>` for an anonymous
    // segment: the pid whose descriptor the open goes through.
    let name = handle.name();
    if !name.starts_with(&format!("anonymous:{maker}:")) {
        return Err(shmkit_segment::Error::Corrupted {
            name,
            what: format!("a pool blob must be an anonymous segment of process {maker}"),
        });
    }
    handle.open()
}

/// The first `len` bytes of `seg` (bounds-checked by the segment).
pub(crate) fn blob_read(seg: &Segment, len: u64) -> shmkit_segment::Result<Vec<u8>> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut bytes = vec![0; len.min(seg.len())];
    seg.read_bytes(0, &mut bytes)?;
    if bytes.len() != len {
        return Err(shmkit_segment::Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!("blob holds {} bytes, the message says {len}", seg.len()),
        });
    }
    Ok(bytes)
}
