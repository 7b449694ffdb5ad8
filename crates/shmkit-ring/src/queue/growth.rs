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
//!   consumer whose `head` is a growth step or more past `released_to` (or whose get
//!   newly emptied the queue — the first empty get after a non-empty one, so a consumer
//!   that keeps up with its producer does not read the put side's line per item —
//!   while more than a quarter step is reserved) tries the put lock without
//!   waiting; holding both, nobody reads or writes the ring, so it gives back every
//!   whole page below `head` — and, if the queue is empty, everything reserved above
//!   it too, moving `reserved_to` back to `tail`.
//!
//! Invariants: `released_to <= head <= tail <= reserved_to`, and a range given back
//! never aliases (modulo the capacity) the range the producer has reserved and not yet
//! written: the release starts at `max(released_to, reserved_to - capacity)`.
//!
//! Crash safety: reserving and giving back pages are idempotent, and each position is
//! stored on the safe side of its syscall — `reserved_to` moving up and `released_to`
//! after it, `reserved_to` moving back (a drained queue) before it — so a process
//! killed in between leaves a position that is merely behind, or pages still reserved
//! that no position counts (the next holder redoes the syscall); never a `reserved_to`
//! above pages given back. A consumer killed while
//! it holds the put lock is taken over like a dead producer (robust claim locks); it
//! wrote nothing in the ring. Pages given back read as zeros, but only bytes that no
//! record needs any more are ever given back: consumed ones, below `head`, or — with
//! both locks held on an empty queue — the unwritten ones above `tail`.
//!
//! Memory: small items are packed into records of at most 4 KiB (raw/packed.rs), each
//! item its encoding plus a varint length (1 byte for encodings under 128 bytes), each
//! record 8 to 15 bytes more; large items take a record each (8-byte length word,
//! padding to 8). On top: at most a growth step behind `head` and a step ahead of
//! `tail`. Measured (`tests/queue_growth.rs`, 10 M items put before any get): 1.27x
//! the encoded bytes for `u64` items 0..10 M, 1.08x for `format!("item {i}")` strings.
//! After a drain at most a quarter step (64 KiB by default) stays reserved, plus the
//! pages of a record still open at `head` (kept: the producer appends to it).
//!
//! With packed records `tail` is the start of the open record, so "drained" (everything
//! taken, so the pages above may go back) is `tail == head` and the record there either
//! absent or open with every frame taken (`packed::drained_end`); that record's pages
//! and the word after it stay, everything below and above goes back.

use crate::error::{Error, Result};
use crate::primitive::AtomicBool;
use crate::primitive::Ordering::Relaxed;
use crate::raw::packed;
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

/// The first position at or above `pos` that starts a page of the file.
fn page_ceil(pos: u64) -> u64 {
    page_floor(pos + PAGE - 1)
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

/// Under the put lock, before an item of `len` bytes is placed in the ring by the
/// producer whose records end at `end`: make sure the pages it (appended to the open
/// record, or in a new record and any padding before it) may touch are reserved.
pub(crate) fn before_put(
    g: Growth,
    reg: &Registry,
    ring: Ring,
    end: u64,
    len: usize,
) -> Result<()> {
    if len > ring.max_message() {
        return Ok(()); // (too large: the ring says so)
    }
    let h = reg.header();
    // Relaxed: `reserved_to` is written only under the put lock, which we hold (its
    // Acquire ordered the last holder's stores before this load).
    let tail = end;
    let reserved = h.reserved_to.load(Relaxed);
    // A frame's varint adds at most 10 bytes.
    let need = tail + 2 * spsc::record_len(len as u64 + 10);
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
pub(crate) fn after_get(g: Growth, reg: &Registry, ring: Ring, me: u32, left_empty: &AtomicBool) {
    let h = reg.header();
    let step = g.step;
    // Relaxed: `head` and `released_to` are written under the get lock, which we hold;
    // `tail` and `reserved_to` are only a hint here (re-read under the put lock).
    let head = ring.header().head.pos.load(Relaxed);
    let released = reg.released_to().load(Relaxed);
    // From the consumer's side of the ring (the record at `head` and `item_pos`): with
    // packed records `tail == head` holds while the open record's frames are taken.
    let empty = packed::is_empty(&ring);
    // Relaxed: this handle's own flag, a hint (handles shared by threads may race on it:
    // one give-back more or less).
    let was_empty = left_empty.load(Relaxed);
    if was_empty != empty {
        left_empty.store(empty, Relaxed);
    }
    let newly_empty = empty && !was_empty;
    // `reserved_to` lies on the put side's line, which every put's lock writes: read it
    // only when a get newly empties the queue (the end of a drain), not on every get of
    // a consumer that keeps up with its producer (that read crossed the cores per item).
    let worth = head >= released + step
        || (newly_empty && h.reserved_to.load(Relaxed) > released + step / 4);
    if !worth {
        return;
    }
    let lock = &h.prod_lock;
    if reg.lock(lock, me, Some(Duration::ZERO)).is_err() {
        return; // a producer is busy: the next get tries again
    }
    // Both locks held: the ring stands still.
    let reserved = h.reserved_to.load(Relaxed);
    // Never a range aliasing the reserved, unwritten bytes above `tail`.
    let start = released.max(reserved.saturating_sub(ring.capacity()));
    let seg = &reg.seg;
    let give_back = |from: u64, to: u64| {
        from >= to
            || for_ranges(ring, from, to, |off, len| {
                seg.release_range(off, len).map_err(Error::Segment)
            })
            .is_ok()
    };
    // What goes back: `below` (consumed pages, up to `released_to`'s new value) and,
    // on a drained queue, the reserved pages above the data, `reserved_to` moving back.
    let (below, above, new_reserved) = match packed::drained_end(&ring) {
        // Empty, no record open: everything reserved goes back, as far as `head`.
        Some(end) if end == head => ((start, page_floor(head)), (start, reserved), head),
        // Empty but for the open record at `head`, whose frames are all taken: keep
        // its pages (the producer appends to it, the consumer's `item_pos` points
        // into it) and the word after it; give back below and above.
        Some(end) => {
            let keep_to = page_ceil(end + spsc::LEN_WORD).min(reserved.max(end));
            let above = (keep_to.max(start), reserved);
            ((start, page_floor(head)), above, keep_to)
        }
        // Items wait: give back the whole pages below `head`.
        None => ((start, page_floor(head)), (reserved, reserved), reserved),
    };
    if new_reserved < reserved {
        // Before the syscall: a holder killed in between leaves pages reserved that
        // `reserved_to` no longer counts (reserved again, idempotently, by the next
        // put), never a `reserved_to` above pages given back (a put would then touch
        // pages nobody reserved: SIGBUS on a full /dev/shm).
        h.reserved_to.store(new_reserved, Relaxed);
    }
    let above_ok = give_back(above.0, above.1);
    let below_ok =
        above.0 <= below.0 && above.1 >= below.1 && above_ok || give_back(below.0, below.1);
    if below_ok {
        // After the syscall, page-aligned (in the file), so that the next range given
        // back starts on a page and no page straddling two releases is left behind.
        reg.released_to()
            .store(page_floor(below.1).max(released), Relaxed);
    }
    reg.unlock(lock);
}
