//! Segments that hold a small block of atomics (Event, Semaphore, Condvar, Barrier).

use shmkit_segment::{Kind, Segment, TypeFingerprint};

use crate::{Error, Result};

/// A segment whose payload starts with an `S` made only of atomics.
pub(crate) struct AtomicsSegment<S> {
    seg: Segment,
    _s: std::marker::PhantomData<S>,
}

impl<S> AtomicsSegment<S> {
    pub(crate) fn create(name: Option<&str>, kind: Kind, mode: u32) -> Result<Self> {
        let b = Segment::builder(name.unwrap_or("anonymous"))
            .size(size_of::<S>())
            .kind(kind)
            .mode(mode);
        let seg = match name {
            Some(_) => b.create()?,
            None => b.anonymous()?,
        };
        Self::wrap(seg)
    }

    pub(crate) fn open(name: &str, kind: Kind) -> Result<Self> {
        Self::wrap(
            Segment::builder(name)
                .kind(kind)
                .fingerprint(TypeFingerprint::NONE)
                .open()?,
        )
    }

    pub(crate) fn wrap(seg: Segment) -> Result<Self> {
        // DESIGN rule 2: the size comes from a header another process wrote; check it
        // before casting.
        if seg.len() < size_of::<S>() || align_of::<S>() > 128 {
            return Err(Error::Corrupted {
                name: seg.name().to_owned(),
                what: format!("{} payload bytes, expected {}", seg.len(), size_of::<S>()),
            });
        }
        Ok(AtomicsSegment {
            seg,
            _s: std::marker::PhantomData,
        })
    }

    pub(crate) fn state(&self) -> &S {
        // SAFETY: the payload holds at least size_of::<S>() bytes at a 128-aligned address
        // (checked in `wrap`); every S used here is made of atomics only, valid for any
        // bit pattern (a fresh segment is zeroed); the reference borrows the mapping.
        unsafe { &*self.seg.as_ptr().cast::<S>() }
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }
}
