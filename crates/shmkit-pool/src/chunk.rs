//! A chunk: a run of consecutive tasks of one job, sent to one worker as one message,
//! with its encoded inputs and the job its outcome goes to.

use crate::error::Error;
use crate::func::FnToken;
use crate::job::Deliver;
use shmkit_segment::{Segment, SegmentHandle};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A chunk's encoded inputs.
pub(crate) enum Payload {
    /// `buf[span]`: the buffer holds the inputs of every chunk of one map.
    Inline {
        buf: Arc<Vec<u8>>,
        span: std::ops::Range<usize>,
    },
    /// In an anonymous blob segment this pool created, held as long as the chunk (so a
    /// worker can open it through this process's descriptor).
    /// (Boxed: the common inline chunk stays small.)
    Blob(Box<InputBlob>),
}

/// A chunk's inputs in a blob segment: the segment, its handle for the worker, and the
/// length of the inputs.
pub(crate) struct InputBlob {
    pub _segment: Segment,
    pub handle: SegmentHandle,
    pub len: u64,
}

/// A run of consecutive tasks of one job, sent to one worker as one message.
pub(crate) struct Chunk {
    pub id: u64,
    pub func: FnToken,
    pub payload: Payload,
    pub job: Arc<dyn Deliver>,
    /// Its first task's index in the job.
    pub first: usize,
    /// Its number of tasks.
    pub count: usize,
}

impl crate::schedule::Queued for Chunk {
    fn id(&self) -> u64 {
        self.id
    }
}

impl Chunk {
    /// Every task of the chunk gets `e`.
    pub(crate) fn fail(self, e: Error) {
        self.job.deliver(self.first, self.count, Err(e));
    }
}

/// Hashes chunk ids (sequential `u64`s made by this process, never read from shared
/// memory) with one multiply: SipHash's flood resistance buys nothing here and cost a
/// measurable share of the collector's time per chunk.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Chunks held by a worker (sent, no outcome yet), by id.
pub(crate) type ChunkMap = HashMap<u64, Chunk, BuildHasherDefault<IdHasher>>;
