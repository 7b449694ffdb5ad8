//! An unbounded [`Queue`](crate::Queue): a ring that grows with what is unconsumed and
//! gives memory back once it is consumed.
//!
//! # Design
//! Python's `Queue()` never blocks in `put`. A growing queue keeps the byte ring and
//! its claim locks exactly as they are (the same records, the same publication order,
//! the same crash-safety argument, the same fast path), but over a **sparse** segment:
//! the ring's capacity is [`VIRTUAL_CAPACITY`] (64 GiB of address space, no memory),
//! and only the pages that hold unconsumed records are backed.
//!
//! Two positions, in the ring's monotonic byte positions, track which pages are backed:
//! - `reserved_to` (header line, written under the put lock): the producer side
//!   reserves pages (`fallocate`) before it writes to them. Before each put, under the
//!   put lock, if `tail + 2 × record` (the record and any padding before it) passes
//!   `reserved_to`, the pages up to the next multiple of the growth step are reserved
//!   and `reserved_to` moves there. A full `/dev/shm` is then an error from `put`
//!   (`NoSpace`), never a `SIGBUS` on touch (DESIGN rule 5).
//! - `released_to` (consumer line, written under **both** claim locks): pages below it
//!   were given back (`fallocate(PUNCH_HOLE)`). After a get, under the get lock, a
//!   consumer whose `head` is a growth step or more past `released_to` (or that emptied
//!   the queue while more than a quarter step is reserved) tries the put lock without
//!   waiting; holding both, nobody reads or writes the ring, so it gives back every
//!   whole page below `head` — and, if the queue is empty, everything reserved above
//!   it too, moving `reserved_to` back to `tail`.
//!
//! Invariants: `released_to <= head <= tail <= reserved_to`, and a range given back
//! never aliases (modulo the capacity) the range the producer has reserved and not yet
//! written: the release starts at `max(released_to, reserved_to - capacity)`.
//!
//! Crash safety: reserving and giving back pages are idempotent, and each position is
//! stored only after its syscall, so a process killed in between leaves a position
//! that is merely behind (the next holder redoes the syscall). A consumer killed while
//! it holds the put lock is taken over like a dead producer (robust claim locks); it
//! wrote nothing in the ring. Pages given back read as zeros, but only bytes that no
//! record needs any more are ever given back: consumed ones, below `head`, or — with
//! both locks held on an empty queue — the unwritten ones above `tail`.
//!
//! Memory: the encoded items rounded up to records (8-byte length word, 8-byte
//! padding) plus at most a growth step behind `head` and a step ahead of `tail`; after
//! a drain, at most a quarter step (64 KiB by default) stays reserved.

use crate::error::{Error, Result};
use crate::primitive::Ordering::Relaxed;
use crate::raw::spsc::{self, Ring};
use crate::registry::{GROWING, REGISTRY_BYTES, Registry};
use std::time::Duration;

/// Ring capacity of a growing queue: address space only, backed page by page.
pub(crate) const VIRTUAL_CAPACITY: u64 = 1 << 36;

/// Default bytes reserved or given back at a time.
pub(crate) const DEFAULT_STEP: u32 = 256 << 10;

const PAGE: u64 = 4096;

/// File offset of ring position 0, modulo a page: the data area need not start on a
/// page, and only whole pages of the file can be given back.
const DATA_FILE_OFFSET: u64 =
    (shmkit_segment::HEADER_SIZE + REGISTRY_BYTES + spsc::HEADER_BYTES) as u64 % PAGE;

/// The last position at or below `pos` that starts a page of the file.
fn page_floor(pos: u64) -> u64 {
    pos.saturating_sub((pos + DATA_FILE_OFFSET) % PAGE)
}

/// Payload offset of ring position `pos`.
fn payload_offset(ring: Ring, pos: u64) -> usize {
    REGISTRY_BYTES + spsc::HEADER_BYTES + (pos & (ring.capacity() - 1)) as usize
}

/// Apply `op` to the payload ranges holding ring positions `from..to` (at most one
/// capacity: split where the ring wraps).
fn for_ranges(
    ring: Ring,
    from: u64,
    to: u64,
    mut op: impl FnMut(usize, usize) -> Result<()>,
) -> Result<()> {
    let cap = ring.capacity();
    let to = to.min(from + cap);
    let mut pos = from;
    while pos < to {
        let until_wrap = cap - (pos & (cap - 1));
        let len = (to - pos).min(until_wrap);
        op(payload_offset(ring, pos), len as usize)?;
        pos += len;
    }
    Ok(())
}

/// A growing queue's settings, read once when a handle opens (both are written before
/// `ready` and never again). A handle keeps them so that the get side never reads the
/// put side's header line: that line changes hands with every put, and reading it on
/// every get cost two cache-line transfers per item (measured, docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Growth {
    /// Bytes reserved or given back at a time (at least a page).
    step: u64,
}

impl Growth {
    /// `Some` if `reg`'s queue grows (`None`: a fixed ring).
    pub(crate) fn of(reg: &Registry) -> Option<Growth> {
        let h = reg.header();
        // Relaxed: written once before `ready`, whose Acquire in `wait_ready` ordered it.
        (h.flags.load(Relaxed) & GROWING != 0).then(|| Growth {
            step: u64::from(h.growth_step.load(Relaxed)).max(PAGE),
        })
    }
}

/// Under the put lock, before a record of `len` bytes is reserved in the ring: make
/// sure the pages it (and any padding before it) may touch are reserved.
pub(crate) fn before_put(g: Growth, reg: &Registry, ring: Ring, len: usize) -> Result<()> {
    if len > ring.max_message() {
        return Ok(()); // (too large: the ring says so)
    }
    let h = reg.header();
    // Relaxed: `tail` and `reserved_to` are written only under the put lock, which we
    // hold (its Acquire ordered the last holder's stores before these loads).
    let tail = ring.header().tail.pos.load(Relaxed);
    let reserved = h.reserved_to.load(Relaxed);
    let need = tail + 2 * spsc::record_len(len as u64);
    if need <= reserved {
        return Ok(());
    }
    let to = need.next_multiple_of(g.step);
    let seg = &reg.seg;
    for_ranges(ring, reserved.max(tail), to, |off, len| {
        seg.reserve_range(off, len).map_err(Error::Segment)
    })?;
    // After the syscall: a holder killed before this store leaves `reserved_to`
    // behind, and the next one reserves again (idempotent).
    h.reserved_to.store(to, Relaxed);
    Ok(())
}

/// Under the get lock `me` holds, after an item was released: give back what is
/// consumed, if enough is, and the put lock is free right now.
pub(crate) fn after_get(g: Growth, reg: &Registry, ring: Ring, me: u32) {
    let h = reg.header();
    let step = g.step;
    // Relaxed: `head` and `released_to` are written under the get lock, which we hold;
    // `tail` and `reserved_to` are only a hint here (re-read under the put lock).
    let head = ring.header().head.pos.load(Relaxed);
    let released = reg.released_to().load(Relaxed);
    // `reserved_to` lies on the put side's line: read only when the queue is empty.
    let worth = head >= released + step
        || (ring.header().tail.pos.load(Relaxed) == head
            && h.reserved_to.load(Relaxed) > released + step / 4);
    if !worth {
        return;
    }
    let lock = &h.prod_lock;
    if reg.lock(lock, me, Some(Duration::ZERO)).is_err() {
        return; // a producer is busy: the next get tries again
    }
    // Both locks held: the ring stands still.
    let tail = ring.header().tail.pos.load(Relaxed);
    let reserved = h.reserved_to.load(Relaxed);
    let (end, new_reserved) = if tail == head {
        (reserved, tail)
    } else {
        (page_floor(head), reserved)
    };
    // Never a range aliasing the reserved, unwritten bytes above `tail`.
    let start = released.max(reserved.saturating_sub(ring.capacity()));
    let seg = &reg.seg;
    let ok = start >= end
        || for_ranges(ring, start, end, |off, len| {
            seg.release_range(off, len).map_err(Error::Segment)
        })
        .is_ok();
    if ok {
        h.reserved_to.store(new_reserved, Relaxed);
        // Page-aligned (in the file), so that the next range given back starts on a
        // page and no page straddling two releases is left behind.
        let released_to = page_floor(if tail == head { tail } else { end }).max(released);
        reg.released_to().store(released_to, Relaxed);
    }
    reg.unlock(lock);
}
