//! The collector's inbox: outcomes read from the result rings under the state lock,
//! delivered to their jobs after it.

use crate::chunk::Chunk;
use crate::error::Error;
use crate::primitive::{AtomicU64, Ordering};
use crate::wire::{self, Outcome};
use shmkit_segment::Segment;

/// Bytes the collector's [`Inbox`] keeps allocated between polls.
const INBOX_KEEP: usize = 1 << 20;

/// Outcomes read under the state lock and delivered after it, kept by the collector
/// from one poll to the next (no allocation per chunk once warm): their bytes copied out
/// of the result rings into one buffer.
#[derive(Default)]
pub(crate) struct Inbox {
    bytes: Vec<u8>,
    items: Vec<(u64, Option<Chunk>, Held)>,
}

/// An [`Outcome`] whose bytes lie in [`Inbox::bytes`], or its result blob, opened.
enum Held {
    Inline(std::ops::Range<usize>),
    Blob(Box<shmkit_segment::Result<Segment>>, u64),
    Failed(String),
}

/// An outcome as delivered to its job.
pub(crate) enum Received<'a> {
    Inline(&'a [u8]),
    /// A result blob (opened when its outcome was read) and the length of its contents.
    Blob(Box<shmkit_segment::Result<Segment>>, u64),
    Failed(String),
}

impl Inbox {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keep an outcome. A result blob is opened here, at once, through the worker's
    /// descriptor (`worker`: its pid), and `taken` (the worker's word) then tells the
    /// worker that it may let the blob go.
    pub(crate) fn push(
        &mut self,
        id: u64,
        chunk: Option<Chunk>,
        outcome: Outcome<'_>,
        worker: u32,
        taken: Option<&AtomicU64>,
    ) {
        let held = match outcome {
            Outcome::Inline(b) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(b);
                Held::Inline(start..self.bytes.len())
            }
            Outcome::Blob { len, seq, blob } => {
                let opened = wire::blob_open(&blob, worker);
                if let Some(taken) = taken {
                    // SYNC: Release, paired with the worker's Acquire load before it
                    // drops its blobs: the blob is open here (or never will be).
                    taken.store(seq, Ordering::Release);
                }
                Held::Blob(Box::new(opened), len)
            }
            Outcome::Failed(m) => Held::Failed(m.into_owned()),
        };
        self.items.push((id, chunk, held));
    }

    /// Hand every outcome to `f`, emptying the inbox.
    pub(crate) fn deliver(&mut self, mut f: impl FnMut(Received<'_>, Option<Chunk>)) {
        for (_, chunk, held) in self.items.drain(..) {
            let received = match held {
                Held::Inline(r) => Received::Inline(&self.bytes[r]),
                Held::Blob(seg, len) => Received::Blob(seg, len),
                Held::Failed(m) => Received::Failed(m),
            };
            f(received, chunk);
        }
        self.bytes.clear();
        // A burst of large outcomes (up to 256 KiB each) should not stay allocated.
        self.bytes.shrink_to(INBOX_KEEP);
    }
}

/// Hand one chunk's outcome to its job (`chunk`: `None` if it is not ours any more).
pub(crate) fn deliver(received: Received<'_>, chunk: Option<Chunk>) {
    let Some(chunk) = chunk else {
        return;
    };
    match received {
        Received::Inline(bytes) => chunk.job.deliver(chunk.first, chunk.count, Ok(bytes)),
        Received::Blob(seg, len) => match (*seg).and_then(|seg| wire::blob_read(&seg, len)) {
            Ok(bytes) => chunk.job.deliver(chunk.first, chunk.count, Ok(&bytes)),
            Err(e) => chunk.fail(Error::Failed {
                message: format!("could not read the results: {e}"),
            }),
        },
        Received::Failed(message) => chunk.fail(Error::Failed { message }),
    }
}
