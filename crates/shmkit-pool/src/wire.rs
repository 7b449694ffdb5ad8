//! Messages between the pool and its workers, and the blob segments that carry
//! arguments or results too large to travel inline.

use crate::func::FnToken;
use serde::{Deserialize, Serialize};
use shmkit_segment::Segment;
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
    /// In the blob segment `input_blob(prefix, chunk)` (never a name read from the ring).
    Blob {
        len: u64,
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
    /// In the blob segment `output_blob(prefix, chunk)`, which the pool removes.
    Blob { len: u64 },
    /// It could not run (its function token did not verify, its arguments or results
    /// could not be read or stored).
    Failed(#[serde(borrow)] Cow<'a, str>),
}

pub(crate) fn input_blob(prefix: &str, chunk: u64) -> String {
    format!("{prefix}-in{chunk}")
}

pub(crate) fn output_blob(prefix: &str, chunk: u64) -> String {
    format!("{prefix}-out{chunk}")
}

/// Create blob `name` holding `bytes`.
pub(crate) fn blob_create(name: &str, bytes: &[u8]) -> shmkit_segment::Result<Segment> {
    let seg = Segment::builder(name).size(bytes.len().max(1)).create()?;
    seg.write_bytes(0, bytes)?;
    Ok(seg)
}

/// The first `len` bytes of blob `name` (bounds-checked by the segment).
pub(crate) fn blob_read(name: &str, len: u64) -> shmkit_segment::Result<Vec<u8>> {
    let seg = Segment::open(name)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut bytes = vec![0; len.min(seg.len())];
    seg.read_bytes(0, &mut bytes)?;
    if bytes.len() != len {
        return Err(shmkit_segment::Error::Corrupted {
            name: name.to_owned(),
            what: format!("blob holds {} bytes, the message says {len}", seg.len()),
        });
    }
    Ok(bytes)
}
