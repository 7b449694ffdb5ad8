//! Messages between the pool and its workers, and the blob segments that carry
//! arguments or results too large to travel inline.
//!
//! Every segment of a pool is anonymous (a memfd): a blob travels as the
//! [`SegmentHandle`] of its maker's descriptor, which the other side opens through
//! `/proc/<pid>/fd/<n>` while the maker holds it. Nothing has a name in `/dev/shm`, so
//! nothing is left there however the pool or a worker ends.

use crate::func::FnToken;
use crate::value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shmkit_segment::{Segment, SegmentHandle};
use std::borrow::Cow;

/// Encoded chunk inputs or outcomes above this size travel in a segment of their own
/// (a "blob"), so that a MiB argument never blocks a ring. A quarter of a worker's
/// rings: a default-size chunk of small values (200 000 `u64`s over 2 workers: 73 kB
/// in, 175 kB out) travels inline. Creating, mapping and faulting in a blob per chunk
/// cost a quarter of such a `map` at the former 32 KiB (docs/benchmarks.md).
pub(crate) const INLINE_MAX: usize = 256 * 1024;

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
    Inline(#[serde(serialize_with = "as_bytes")] &'a [u8]),
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
    /// The encoded `Vec<Result<R, String>>` (each outcome written by [`push_outcome`]).
    Inline(#[serde(serialize_with = "as_bytes")] &'a [u8]),
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

/// Write an inline chunk's bytes as postcard bytes: the length, then one copy. Serde's
/// default for a `&[u8]` is a sequence of `u8`s, which postcard writes one byte at a
/// time — the same bytes (a test compares them), at a call per byte: a default-size
/// chunk's 175 kB of outcomes was most of what its worker spent after running it. (The
/// reading side already borrows a `&[u8]` through `deserialize_bytes`.)
fn as_bytes<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// Append one task's outcome to `out`: the tag postcard gives a `Result` (`0` for
/// `Ok`, `1` for `Err`: one byte), then the value as [`value::push`] writes it (a
/// fixed-width number raw, anything else, the panic message included, as postcard).
/// Written and read by hand ([`take_outcome`]) rather than through serde's enum
/// machinery, which cost more per task than the task itself for small results.
pub(crate) fn push_outcome<R: Serialize + 'static>(
    r: &Result<R, String>,
    out: &mut Vec<u8>,
) -> postcard::Result<()> {
    match r {
        Ok(v) => {
            out.push(0);
            value::push(v, out)
        }
        Err(m) => {
            out.push(1);
            value::push(m, out)
        }
    }
}

/// One outcome written by [`push_outcome`], and the bytes after it.
pub(crate) fn take_outcome<R: DeserializeOwned + 'static>(
    bytes: &[u8],
) -> postcard::Result<(Result<R, String>, &[u8])> {
    match bytes.split_first() {
        Some((0, rest)) => value::take::<R>(rest).map(|(v, rest)| (Ok(v), rest)),
        Some((1, rest)) => value::take::<String>(rest).map(|(m, rest)| (Err(m), rest)),
        Some(_) => Err(postcard::Error::DeserializeBadEnum),
        None => Err(postcard::Error::DeserializeUnexpectedEnd),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_the_bytes_serde_writes_for_a_result() {
        let cases: Vec<Result<(u64, String), String>> = vec![
            Ok((0, String::new())),
            Ok((u64::MAX, "x".repeat(300))),
            Err(String::new()),
            Err("panicked: boom".into()),
        ];
        let mut out = Vec::new();
        for r in &cases {
            push_outcome(r, &mut out).unwrap();
        }
        let mut serde_bytes = Vec::new();
        for r in &cases {
            serde_bytes = postcard::to_extend(r, serde_bytes).unwrap();
        }
        assert_eq!(out, serde_bytes);
        let mut rest = &out[..];
        for r in &cases {
            let (got, more) = take_outcome::<(u64, String)>(rest).unwrap();
            assert_eq!(&got, r);
            rest = more;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn inline_bodies_and_outcomes_are_the_bytes_serde_writes_for_a_slice() {
        // Serde's default for the same shapes: a slice as a sequence of `u8`s.
        #[derive(Serialize)]
        enum Plain<'a> {
            Inline(&'a [u8]),
        }
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let plain = postcard::to_allocvec(&Plain::Inline(&bytes)).unwrap();
            let body = postcard::to_allocvec(&Body::Inline(&bytes)).unwrap();
            let outcome = postcard::to_allocvec(&Outcome::Inline(&bytes)).unwrap();
            assert_eq!(body, plain, "body of {len} bytes");
            assert_eq!(outcome, plain, "outcome of {len} bytes");
            match postcard::from_bytes::<Outcome<'_>>(&outcome).unwrap() {
                Outcome::Inline(b) => assert_eq!(b, &bytes[..]),
                _ => panic!("not inline"),
            }
        }
    }

    #[test]
    fn a_bad_tag_or_a_short_outcome_is_an_error() {
        assert!(take_outcome::<u64>(&[]).is_err());
        assert!(take_outcome::<u64>(&[2, 7]).is_err());
        assert!(take_outcome::<u64>(&[0]).is_err());
        assert!(take_outcome::<u64>(&[1, 5, b'a']).is_err());
    }
}
